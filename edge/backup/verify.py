"""Opening an extracted archive's members for what they claim to be.

:func:`edge.backup.archive.verify_archive` proves the members are the ones the manifest
lists; that says nothing about whether they restore. This module checks that they would:

* ``db/facepro.db`` is an SQLite file that passes ``integrity_check`` and whose applied
  migrations are all known to this facepro (none newer);
* ``settings.json`` is a settings file ``facepro config check`` accepts;
* every ``faces/...`` member is a PNG or JPEG of bounded size whose header dimensions are
  within :data:`MAX_PIXELS` (read before decoding) and that decodes;
* the manifest's ``includes`` matches the members, and nothing else is in the archive.

Each failure raises :class:`~edge.backup.archive.ArchiveError` naming the member.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.backup import archive as arc
from edge.config import ConfigError, check_document
from edge.db.archive_db import inspect_snapshot
from edge.db.migrator import default_migrations_dir, discover
from edge.images import image_size

SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_SETTINGS_BYTES = 1 << 20
MAX_FACE_BYTES = 16 << 20
MAX_PIXELS = 16_000_000  # 16 MP: far above any stored crop, far below a decompression bomb
MAX_SIDE = 16384


class ArchiveError(arc.ArchiveError):
    """A member is not what it claims to be."""


def check_members(verified: arc.VerifiedArchive, label: str) -> dict[str, Any]:
    """Check every member of ``verified``; returns what was found
    ({schema_version, faces, settings}). Raises ArchiveError naming the failing member."""
    manifest = verified.manifest
    includes = set(manifest["includes"])
    names = [m["name"] for m in manifest["members"]]
    for name in names:
        if name not in (arc.DB_MEMBER, arc.SETTINGS_MEMBER) and not name.startswith(arc.FACES_PREFIX):
            raise ArchiveError(f"{label}: member {name!r} is not part of a facepro backup")
    for part, present in (("db", arc.DB_MEMBER in names), ("settings", arc.SETTINGS_MEMBER in names)):
        if present != (part in includes):
            member = arc.DB_MEMBER if part == "db" else arc.SETTINGS_MEMBER
            raise ArchiveError(f"{label}: member {member!r}: the manifest's includes say "
                               f"{'it is not there' if present else 'it is there'}, the members disagree")
    faces = [n for n in names if n.startswith(arc.FACES_PREFIX)]
    if faces and "faces" not in includes:
        raise ArchiveError(f"{label}: member {faces[0]!r}: the manifest's includes do not list faces")
    found: dict[str, Any] = {"schema_version": None, "faces": len(faces), "settings": "settings" in includes}
    if "db" in includes:
        found["schema_version"] = check_database(verified.root / arc.DB_MEMBER, f"{label}: member {arc.DB_MEMBER!r}")
    if "settings" in includes:
        check_settings(verified.root / arc.SETTINGS_MEMBER, f"{label}: member {arc.SETTINGS_MEMBER!r}")
    for name in faces:
        check_image(verified.root / name, f"{label}: member {name!r}")
    return found



def check_database(path: Path, where: str) -> int:
    """The schema version of an archived database; ArchiveError unless it would restore."""
    with open(path, "rb") as fh:
        if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise ArchiveError(f"{where} is not an SQLite database")
    try:
        check, versions = inspect_snapshot(path)
    except sqlite3.Error as exc:
        raise ArchiveError(f"{where}: SQLite cannot read it: {exc}") from None
    if check != "ok":
        raise ArchiveError(f"{where} fails integrity_check: {check}")
    if not versions:
        raise ArchiveError(f"{where} has no applied migrations (not a facepro database)")
    known = {m.version for m in discover(default_migrations_dir())}
    latest = max(known, default=0)
    if max(versions) > latest:
        raise ArchiveError(f"{where}: its schema ({max(versions):03d}) is newer than this facepro ({latest:03d}); "
                           "upgrade facepro first")
    unknown = sorted(set(versions) - known)
    if unknown:
        raise ArchiveError(f"{where}: applied migration {unknown[0]:03d} is not one this facepro knows")
    return max(versions)


def check_settings(path: Path, where: str) -> None:
    if path.stat().st_size > MAX_SETTINGS_BYTES:
        raise ArchiveError(f"{where} is larger than {MAX_SETTINGS_BYTES} bytes")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ArchiveError(f"{where} is not UTF-8 text") from None
    try:
        check_document(text, where)
    except ConfigError as exc:
        raise ArchiveError(f"{exc} (settings in the archive)") from None


def check_image(path: Path, where: str) -> None:
    size = path.stat().st_size
    if size > MAX_FACE_BYTES:
        raise ArchiveError(f"{where} is {size} bytes, more than a face image may be ({MAX_FACE_BYTES})")
    data = path.read_bytes()
    found = image_size(data[:256 << 10])
    if found is None or found[0] not in ("PNG", "JPEG"):  # what enrolment stores
        raise ArchiveError(f"{where} is not a PNG or JPEG image")
    kind, width, height = found
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise ArchiveError(f"{where}: a {kind} of {width}x{height} pixels is refused (limit {MAX_PIXELS} pixels)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_2)
    if image is None or image.size == 0:
        raise ArchiveError(f"{where} does not decode as a {kind} image (damaged)")
