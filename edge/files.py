"""Crash-safe file writes: the one way the service replaces a file.

A reader (or a power cut) sees either the old file or the new one, never a part: the
data goes to a temporary name in the same directory, is fsynced, renamed over the final
name, and the directory is fsynced so the rename itself survives.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Writer = Callable[[BinaryIO], object]


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes | Writer, *, mode: int | None = None,
                 temp_suffix: str | None = None) -> Path:
    """Replace ``path`` with ``data`` (bytes, or a function writing to the open file).

    ``mode`` sets the permission bits before the file appears under its name (e.g. 0o600
    for secrets). The temporary file is removed if anything fails. Returns ``path``.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{os.getpid()}{temp_suffix or '.partial'}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o666 if mode is None else mode)  # the umask applies
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # exactly this, whatever the umask
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)
    return final



def inside(root: str | os.PathLike[str], stored: str | os.PathLike[str]) -> Path | None:
    """``stored`` (a path read from the database or an archive, relative to ``root``) as a
    path inside ``root``, or None when it is absolute, climbs out with '..', holds a NUL or
    resolves (through links) outside ``root``: such a value is not ours to touch."""
    text = os.fspath(stored)
    if not text or "\x00" in text or os.path.isabs(text):
        return None
    base = Path(root).resolve()
    candidate = (base / text).resolve()
    return candidate if candidate != base and candidate.is_relative_to(base) else None
