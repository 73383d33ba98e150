"""Event snapshots and enrolled face crops, served only from inside their own directories."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, send_from_directory

from edge.context import ServiceContext

bp = Blueprint("files", __name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def snapshots_dir(ctx: ServiceContext) -> Path:
    return ctx.data_dir / "snapshots"


def faces_dir(ctx: ServiceContext) -> Path:
    return ctx.data_dir / "faces"


def relative_snapshot_path(ctx: ServiceContext, path: str | None) -> str | None:
    """A stored snapshot path (relative to the data dir, as events store it, or absolute) as a
    path relative to the snapshot dir; None when it lies outside that dir."""
    return _relative_to(snapshots_dir(ctx), path, ctx.data_dir)


def relative_face_path(ctx: ServiceContext, path: str | None) -> str | None:
    """A face crop path (relative to faces/, as enrolment stores it, or absolute)."""
    return _relative_to(faces_dir(ctx), path, faces_dir(ctx))


def _relative_to(base: Path, path: str | None, anchor: Path) -> str | None:
    if not path:
        return None
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = anchor / candidate
    try:
        relative = Path(os.path.normpath(candidate)).relative_to(os.path.normpath(base))
    except ValueError:
        return None
    text = relative.as_posix()
    return None if text in ("", ".") or text.startswith("..") else text


def _send(base: Path, path: str) -> Any:
    # A NUL (``..%00.png``) or other control character names no file: 404, before any
    # path function raises ValueError on it.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path) or Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        abort(404)
    # A symlink inside the directory must not lead out of it either.
    real = os.path.realpath(base / path)
    if os.path.commonpath([real, os.path.realpath(base)]) != os.path.realpath(base):
        abort(404)
    # send_from_directory uses safe_join: '..', absolute paths and the like answer 404.
    response = send_from_directory(base, path, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def send_snapshot(ctx: ServiceContext, relative: str) -> Any:
    """A snapshot by its path relative to the snapshot dir (:func:`relative_snapshot_path`),
    with the same checks as ``/snapshots/``; aborts 404 when it is not there."""
    return _send(snapshots_dir(ctx), relative)


@bp.get("/snapshots/<path:path>")
def snapshot(path: str) -> Any:
    return _send(snapshots_dir(current_app.config["FACEPRO_CTX"]), path)


@bp.get("/faces/<path:path>")
def face(path: str) -> Any:
    return _send(faces_dir(current_app.config["FACEPRO_CTX"]), path)
