"""The backup archive: a ZIP file whose last member, ``manifest.json``, lists every other
member with its size and SHA-256.

Why ZIP: it is streamable member by member, readable with standard tools when not
encrypted, and lets the verifier reject a member before extracting it. The database is
deflated; face images (already compressed) are stored. Encryption wraps the whole ZIP
(see :mod:`edge.backup.crypto`), so member names and the manifest are private too.

Members::

    db/facepro.db      consistent snapshot taken with SQLite's online backup API
    faces/...          <data_dir>/faces/ as it was
    settings.json      the device settings file (secrets only when the archive is encrypted)
    manifest.json      written last
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from edge.backup import crypto
from edge.backup.errors import BackupError
from edge.backup.pacing import DirtyLimiter
from edge.errors import FaceproError
from edge.timestamps import compact, iso_utc

FORMAT = "facepro-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = "db/facepro.db"
SETTINGS_MEMBER = "settings.json"
FACES_PREFIX = "faces/"
PARTS = ("db", "faces", "settings")
NAME_RE = re.compile(r"^facepro_backup_(?P<device>[A-Za-z0-9_-]+)_(?P<stamp>\d{8}T\d{6}Z)\.zip(?P<enc>\.enc)?$")
MAX_MANIFEST = 64 << 20
COPY_CHUNK = 1 << 20
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Progress = Callable[[float, str], None]


class ArchiveError(FaceproError):
    """The archive is unusable; the message names the archive and the reason."""


def parse_includes(value: str | Iterable[str], label: str = "--include") -> list[str]:
    """The parts named in ``value`` (``"db,faces"`` or a list of names), in archive order.

    Raises :class:`BackupError` (exit code 2) naming ``label`` for an unknown part, an
    empty choice or a value of the wrong type. The one check of an ``include`` choice.
    """
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise BackupError(f"{label}: expected a list of db, faces, settings", exit_code=2)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise BackupError(f"{label}: {', '.join(map(repr, unknown))} is not one of db, faces, settings",
                          exit_code=2)
    if not parts:
        raise BackupError(f"{label}: choose at least one of db, faces, settings", exit_code=2)
    return [p for p in PARTS if p in parts]


def archive_name(device_id: str, created: datetime, encrypted: bool) -> str:
    return f"facepro_backup_{device_id}_{compact(created)}.zip" + (".enc" if encrypted else "")


def parse_stamp(text: str) -> datetime:
    """A ``YYYY-MM-DDTHH:MM:SSZ`` time (an archive's ``created_at``) as an aware datetime;
    ``ValueError`` for anything else."""
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=timezone.utc)


def parse_name(name: str) -> dict[str, Any] | None:
    """{device, created_at (ISO Z), encrypted} for an archive file name, or None."""
    m = NAME_RE.match(name)
    if not m:
        return None
    created = datetime.strptime(m.group("stamp"), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return {"device": m.group("device"), "created_at": iso_utc(created), "encrypted": bool(m.group("enc"))}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class BuiltArchive:
    path: Path
    size: int
    sha256: str
    manifest: dict[str, Any]


class ArchiveWriter:
    """Adds members while hashing them; ``close()`` appends the manifest."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.members: list[dict[str, Any]] = []
        self.zip = zipfile.ZipFile(path, "w", allowZip64=True)
        self._limiter = DirtyLimiter(self.zip.fp)

    def add_file(self, name: str, source: Path, compress: bool, progress: Callable[[int], None] | None = None) -> None:
        _check_member_name(name, str(self.path))
        info = zipfile.ZipInfo(name, date_time=_zip_time(source.stat().st_mtime))
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        if compress:
            info._compresslevel = 1  # type: ignore[attr-defined]  # fast: the CPU is shared with the pipeline
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as src, self.zip.open(info, "w", force_zip64=True) as dst:
            while chunk := src.read(COPY_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
                self._limiter.wrote(len(chunk))
                if progress:
                    progress(len(chunk))
        self.members.append({"name": name, "size": size, "sha256": digest.hexdigest()})

    def add_bytes(self, name: str, data: bytes) -> None:
        _check_member_name(name, str(self.path))
        info = zipfile.ZipInfo(name, date_time=_zip_time(datetime.now().timestamp()))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        self.zip.writestr(info, data)
        self.members.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    def close(self) -> dict[str, Any]:
        manifest = dict(self.header)
        manifest["members"] = self.members
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = zipfile.ZipInfo(MANIFEST, date_time=_zip_time(datetime.now().timestamp()))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        self.zip.writestr(info, data)
        self.zip.close()
        return manifest

    def abort(self) -> None:
        try:
            self.zip.close()
        except Exception:
            pass


def _zip_time(ts: float) -> tuple[int, int, int, int, int, int]:
    t = datetime.fromtimestamp(max(ts, 315532800), tz=timezone.utc)  # zip dates start in 1980
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)


def _check_member_name(name: str, label: str) -> None:
    """Reject what could escape the staging directory: absolute, '..', backslashes, drives."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"{label}: unsafe member name {name!r} (absolute or not a plain relative path)")
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".", "") for part in parts) or name.endswith("/"):
        raise ArchiveError(f"{label}: unsafe member name {name!r} ('..' or not a file)")


# -- verification --------------------------------------------------------------------------

@dataclass
class VerifiedArchive:
    """An archive checked member by member and extracted into ``root`` (a staging dir)."""
    root: Path
    manifest: dict[str, Any]

    @property
    def includes(self) -> list[str]:
        return list(self.manifest.get("includes", []))

    @property
    def db_path(self) -> Path | None:
        path = self.root / DB_MEMBER
        return path if path.exists() else None

    @property
    def faces_dir(self) -> Path:
        return self.root / "faces"

    @property
    def settings_path(self) -> Path | None:
        path = self.root / SETTINGS_MEMBER
        return path if path.exists() else None


def verify_archive(archive: Path, staging: Path, keys: crypto.KeySource | None,
                   extract: bool = True, progress: Progress | None = None,
                   label: str | None = None) -> VerifiedArchive:
    """Decrypt (if needed), check every member against the manifest and extract into ``staging``.

    Nothing is written outside ``staging``. Raises :class:`ArchiveError` or
    :class:`crypto.CryptoError` with a message naming the archive and the problem.
    """
    label = label or str(archive)
    if not archive.is_file():
        raise ArchiveError(f"{label}: archive not found")
    staging.mkdir(parents=True, exist_ok=True)
    zip_path = archive
    total = max(archive.stat().st_size, 1)
    if crypto.is_encrypted(archive):
        crypto.check_header(archive, label)  # a crafted header is refused before any work
        if keys is None:
            raise ArchiveError(f"{label}: the archive is encrypted; set backup.encrypt.passphrase or "
                               "key_file (or pass --key-file)")
        zip_path = staging / "archive.zip"
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(min(0.5, 0.5 * done / total), "decrypting")

        with open(archive, "rb") as sealed, open(zip_path, "wb") as opened:
            crypto.decrypt_stream(sealed, opened, keys, label, progress=tick)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{label}: not a readable backup archive (corrupted or truncated): {exc}") from None
    with zf:
        infos = zf.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise ArchiveError(f"{label}: duplicate member names")
        if MANIFEST not in names:
            raise ArchiveError(f"{label}: no manifest.json (not a facepro backup, or the write never finished)")
        if names[-1] != MANIFEST:
            raise ArchiveError(f"{label}: manifest.json is not the last member")
        for info in infos:
            _check_member_name(info.filename, label)
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # no type bits = a plain file (Python's own zips)
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise ArchiveError(f"{label}: member {info.filename!r} is {kind}")
        manifest_info = zf.getinfo(MANIFEST)
        if manifest_info.file_size > MAX_MANIFEST:
            raise ArchiveError(f"{label}: manifest.json is implausibly large")
        try:
            manifest = json.loads(_read_limited(zf, manifest_info, MAX_MANIFEST, label))
        except json.JSONDecodeError as exc:
            raise ArchiveError(f"{label}: manifest.json is not valid JSON: {exc.msg}") from None
        _check_manifest(manifest, label)
        listed = {m["name"]: m for m in manifest["members"]}
        present = set(names) - {MANIFEST}
        if extra := sorted(present - set(listed)):
            raise ArchiveError(f"{label}: member {extra[0]!r} is not in the manifest")
        if missing := sorted(set(listed) - present):
            raise ArchiveError(f"{label}: member {missing[0]!r} listed in the manifest is missing")
        need = sum(int(m["size"]) for m in manifest["members"])
        if extract and shutil.disk_usage(staging).free < need + (16 << 20):
            raise ArchiveError(f"{label}: not enough free space in {staging} to check the archive "
                               f"(need {need} bytes)")
        done = 0
        for info in infos:
            if info.filename == MANIFEST:
                continue
            entry = listed[info.filename]
            expected = int(entry["size"])
            if info.file_size != expected:
                raise ArchiveError(f"{label}: member {info.filename!r} is {info.file_size} bytes, "
                                   f"the manifest says {expected}")
            out = staging / "content" / info.filename if extract else None
            if out is not None:
                resolved = out.resolve()
                if not resolved.is_relative_to((staging / "content").resolve()):
                    raise ArchiveError(f"{label}: member {info.filename!r} escapes the staging area")
                out.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            size = 0
            try:
                with zf.open(info) as src, (open(out, "wb") if out else _NullWriter()) as dst:
                    while chunk := src.read(COPY_CHUNK):
                        size += len(chunk)
                        if size > expected:
                            raise ArchiveError(f"{label}: member {info.filename!r} is larger than the manifest says")
                        digest.update(chunk)
                        dst.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(0.5 + 0.5 * done / max(need, 1), f"checking {info.filename}")
            except (zipfile.BadZipFile, zlib_error(), EOFError, OSError) as exc:
                if "CRC" in str(exc):
                    raise ArchiveError(f"{label}: member {info.filename!r} fails its checksum "
                                       "(tampered or damaged)") from None
                raise ArchiveError(f"{label}: member {info.filename!r} is damaged: {exc}") from None
            if size != expected or digest.hexdigest() != entry["sha256"]:
                raise ArchiveError(f"{label}: member {info.filename!r} fails its checksum (tampered or damaged)")
    if zip_path != archive:
        zip_path.unlink()
    return VerifiedArchive(staging / "content", manifest)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


class _NullWriter:
    def write(self, data: bytes) -> int:
        return len(data)

    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, label: str) -> bytes:
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ArchiveError(f"{label}: {info.filename} is damaged: {exc}") from None
    if len(data) > limit:
        raise ArchiveError(f"{label}: {info.filename} is larger than allowed")
    return data


def _check_manifest(manifest: Any, label: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{label}: manifest.json is not a facepro backup manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArchiveError(f"{label}: archive format version {version!r} is newer than this facepro "
                           f"understands ({FORMAT_VERSION}); upgrade facepro")
    members = manifest.get("members")
    if not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("size"), int)
            and m["size"] >= 0 and isinstance(m.get("sha256"), str) for m in members):
        raise ArchiveError(f"{label}: manifest.json has a malformed member list")
    includes = manifest.get("includes")
    if not isinstance(includes, list) or not set(includes) <= set(PARTS):
        raise ArchiveError(f"{label}: manifest.json has a malformed includes list")
