"""Enrol and remove people from the status page, over the pipeline's enrolment API.

Flask-free. Uploaded photos are checked (JPEG or PNG that really decodes) before the
enrolment code sees them; every refusal is an :class:`edge.web.errors.ActionError`.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import cv2
import numpy as np

from edge.context import ServiceContext
from edge.db.connection import connect
from edge.images import ImageRefused, check_image_header
from edge.web.errors import ActionError

log = logging.getLogger(__name__)

MAX_PHOTOS = 20
MAX_NAME = 100


def check_image(filename: str, data: bytes) -> np.ndarray:
    """Decode an uploaded photo (JPEG or PNG only) to a BGR array, or refuse it by name."""
    label = filename or "(unnamed file)"
    if data[:3] == b"\xff\xd8\xff":
        kind = "JPEG"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        kind = "PNG"
    else:
        raise ActionError(f"{label}: not a JPEG or PNG image")
    try:
        check_image_header(data, label)  # the size it declares, before a decoder allocates it
    except ImageRefused as exc:
        raise ActionError(str(exc), 413 if exc.too_large else 400) from None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ActionError(f"{label}: the {kind} file is damaged and cannot be decoded")
    return image


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ActionError("name: enter the person's name")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ActionError(f"name: longer than {MAX_NAME} characters")
    return name


# One enrolment at a time: each loads a model pack of its own.
_enrol_lock = threading.Lock()


def _enrolment_pack(ctx: ServiceContext) -> Any:
    """A model pack for this enrolment only. The pipeline's sessions and bound buffers belong
    to its inference thread; a second pack is loaded per enrolment (well under a second) and
    dropped after it, so the device does not keep a spare copy of the models in memory."""
    from edge.pipeline.pack import load_model_pack_from_settings

    return load_model_pack_from_settings(ctx.settings)


def enroll(ctx: ServiceContext, name: Any, photos: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Enrol ``name`` from uploaded photos (all or nothing; exactly one face per photo)."""
    name = check_name(name)
    if not photos:
        raise ActionError("photos: choose at least one photo of the person's face")
    if len(photos) > MAX_PHOTOS:
        raise ActionError(f"photos: at most {MAX_PHOTOS} at a time")
    images = [check_image(filename, data) for filename, data in photos]
    try:
        from edge.pipeline import enroll as enroll_api
        from edge.pipeline.pack import ModelPackError
    except ImportError as exc:
        raise ActionError(f"enrolment is not available on this device ({exc})", 503) from exc
    try:
        name = enroll_api.validate_name(name)
    except enroll_api.EnrollError as exc:
        raise ActionError(f"name: {exc}") from exc
    # Errors name the upload as the technician chose it.
    labels = [filename or f"{index:02d}-photo-{index}" for index, (filename, _data) in enumerate(photos)]
    with _enrol_lock:
        try:
            pack = _enrolment_pack(ctx)
        except ModelPackError as exc:
            raise ActionError(f"enrolment is not available: {exc}", 503) from exc
        threshold = ctx.settings["recognition.det_threshold"]
        try:
            samples = [enroll_api.analyse_array(pack, image, label, threshold)
                       for image, label in zip(images, labels)]
        except enroll_api.EnrollError as exc:
            raise ActionError(str(exc)) from exc
    conn = connect(ctx.db_path, busy_timeout_ms=ctx.settings["database.busy_timeout_ms"])
    try:
        result = enroll_api.save_samples(conn, ctx.data_dir, name, samples, pack.embedder.backend,
                                         bus=ctx.bus)
    except enroll_api.EnrollError as exc:
        raise ActionError(str(exc)) from exc
    finally:
        conn.close()
    log.info("enrolled %s from the status page (%d photo(s))", name, len(photos))
    return result


def remove(ctx: ServiceContext, name: str) -> dict[str, Any]:
    """Remove a person, their embeddings and face crops (the pipeline reloads its gallery)."""
    try:
        from edge.pipeline import enroll as enroll_api
    except ImportError as exc:
        raise ActionError(f"removing people is not available on this device ({exc})", 503) from exc
    conn = connect(ctx.db_path, busy_timeout_ms=ctx.settings["database.busy_timeout_ms"])
    try:
        result = enroll_api.remove(conn, ctx.data_dir, name, bus=ctx.bus)
    except KeyError as exc:
        raise ActionError(f"no enrolled person named {name!r}", 404) from exc
    finally:
        conn.close()
    log.info("removed %s from the status page", name)
    return result
