"""Enrolment: photos -> one face each -> aligned crop + embedding -> database.

All or nothing: every image is read, detected and embedded before anything is written;
then the crops are written (temp name, fsync, rename) and the rows inserted in one
transaction. If the transaction fails, the crops just written are removed. A crash
between the two leaves at worst an unreferenced crop file, never a row without its image.
"""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.db import faces
from edge.errors import BadInput
from edge.files import fsync_dir
from edge.images import ImageRefused, check_image_header
from edge.pipeline.pack import ModelPack

log = logging.getLogger(__name__)

FACES_DIRNAME = "faces"
CROP_EXT = ".png"  # lossless: the stored crop reproduces the stored embedding
MAX_NAME_LENGTH = 64
MAX_IMAGE_BYTES = 64 * 1024 * 1024


class EnrollError(BadInput):
    """Bad enrolment input (name, image); the message names it."""


@dataclass
class FaceSample:
    image: Path
    crop: np.ndarray        # (112, 112, 3) uint8 BGR aligned face
    embedding: np.ndarray   # (dim,) float32, L2-normalised
    score: float
    box: list[float] = field(default_factory=list)


def faces_root(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / FACES_DIRNAME


def validate_name(name: str) -> str:
    """A person's name, also used as their directory name under faces/."""
    clean = name.strip()
    if not clean:
        raise EnrollError("name must not be empty")
    if len(clean) > MAX_NAME_LENGTH:
        raise EnrollError(f"name {clean[:20]!r}...: longer than {MAX_NAME_LENGTH} characters")
    if clean in (".", "..") or clean.startswith(".") or any(ch in clean for ch in "/\\\0"):
        raise EnrollError(f"name {clean!r}: must not contain '/', '\\' or start with '.'")
    if any(ord(ch) < 32 for ch in clean):
        raise EnrollError(f"name {clean!r}: must not contain control characters")
    return clean


def check_image_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an enrolment photo whose header shows a size the device can take
    (EnrollError naming the file otherwise); nothing is decoded here."""
    image_path = Path(path)
    if not image_path.is_file():
        raise EnrollError(f"{image_path}: no such image file")
    size = image_path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise EnrollError(f"{image_path}: {size / 1e6:.0f} MB, larger than the {MAX_IMAGE_BYTES / 1e6:.0f} MB "
                          "an enrolment photo may be")
    data = image_path.read_bytes()
    try:
        check_image_header(data, str(image_path))
    except ImageRefused as exc:
        raise EnrollError(str(exc) if exc.too_large else f"{image_path}: cannot read the image ({exc.reason})") from None
    return data


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an enrolment photo, after its header showed a size the device can take."""
    image_path = Path(path)
    data = check_image_file(image_path)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise EnrollError(f"{image_path}: cannot read the image (not a supported image file)")
    return image


def analyse_image(pack: ModelPack, path: str | os.PathLike[str], threshold: float | None = None) -> FaceSample:
    """The single face in an image file; EnrollError naming the image for 0 or 2+ faces."""
    image_path = Path(path)
    return analyse_array(pack, read_image(image_path), image_path, threshold)


def analyse_array(pack: ModelPack, image: np.ndarray, label: str | os.PathLike[str],
                  threshold: float | None = None) -> FaceSample:
    """The single face in a decoded BGR image; ``label`` names it in errors (a file name)."""
    detections = pack.detector.detect(image, threshold)
    if len(detections) == 0:
        raise EnrollError(f"{label}: no face found (an enrolment photo needs exactly one face)")
    if len(detections) > 1:
        raise EnrollError(f"{label}: {len(detections)} faces found (an enrolment photo needs exactly one face)")
    embedding = pack.embedder.embed(image, detections.kps)[0].copy()
    crop = pack.embedder.aligned_crops()[0].copy()
    return FaceSample(Path(label), crop, embedding, float(detections.scores[0]),
                      [float(v) for v in detections.boxes[0]])


def _write_crop(directory: Path, crop: np.ndarray) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{uuid.uuid4().hex[:16]}{CROP_EXT}"
    tmp = final.with_name(final.name + ".partial")
    ok, encoded = cv2.imencode(CROP_EXT, crop)
    if not ok:
        raise OSError(f"cannot encode the face crop for {final}")
    with open(tmp, "wb") as fh:
        fh.write(encoded.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def enroll(conn: sqlite3.Connection, pack: ModelPack, data_dir: str | os.PathLike[str], name: str,
           images: Sequence[str | os.PathLike[str]], bus: Any = None,
           threshold: float | None = None) -> dict[str, Any]:
    """Enrol ``name`` from ``images`` (added to an existing person of that name).
    Returns {name, added, embedding_ids, images: [{image, crop, score}]}."""
    validate_name(name)
    if not images:
        raise EnrollError("no images given")
    samples = [analyse_image(pack, image, threshold) for image in images]
    return save_samples(conn, data_dir, name, samples, pack.embedder.backend, bus=bus)


def save_samples(conn: sqlite3.Connection, data_dir: str | os.PathLike[str], name: str,
                 samples: Sequence[FaceSample], backend: str, bus: Any = None) -> dict[str, Any]:
    """Write the crops and rows for already analysed ``samples`` (all or nothing)."""
    clean = validate_name(name)
    if not samples:
        raise EnrollError("no images given")
    root = faces_root(data_dir)
    person_dir = root / clean
    written: list[Path] = []
    try:
        for sample in samples:
            written.append(_write_crop(person_dir, sample.crop))
        fsync_dir(person_dir)
        rows = [faces.NewEncoding(sample.embedding, path.relative_to(root).as_posix())
                for sample, path in zip(samples, written)]
        ids = faces.enroll_rows(conn, clean, rows, backend)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    log.info("enrolled %s: %d image(s), embeddings %s", clean, len(ids), ids)
    if bus is not None:
        bus.publish("enroll", {"name": clean, "action": "add", "added": len(ids)})
    return {
        "name": clean,
        "added": len(ids),
        "embedding_ids": ids,
        "backend": backend,
        "dim": int(samples[0].embedding.size),
        "images": [{"image": str(s.image), "crop": str(p), "score": round(s.score, 4)}
                   for s, p in zip(samples, written)],
    }


def remove(conn: sqlite3.Connection, data_dir: str | os.PathLike[str], name: str, bus: Any = None) -> dict[str, Any]:
    """Remove ``name``'s rows, then their crop directory. KeyError if unknown."""
    images = faces.remove_user(conn, name)
    root = faces_root(data_dir).resolve()
    person_dir = (root / name).resolve()
    removed_dir = False
    if person_dir.parent == root and person_dir.is_dir():
        shutil.rmtree(person_dir)
        removed_dir = True
    else:  # crops outside the person's directory (not written by us): remove them one by one
        for rel in images:
            if rel is None:
                continue
            path = (root / rel).resolve()
            if root in path.parents:
                path.unlink(missing_ok=True)
    log.info("removed %s: %d embedding(s)", name, len(images))
    if bus is not None:
        bus.publish("enroll", {"name": name, "action": "remove"})
    return {"name": name, "removed_embeddings": len(images), "removed_dir": removed_dir}
