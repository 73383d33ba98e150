"""Where archives go: the target base class, local directories and mount points (USB
drives, OS-mounted shares). SMB shares are in :mod:`edge.backup.smb`; the settings are
turned into targets by :mod:`edge.backup.target_specs`.

Every target writes the same way: free-space check, a temporary name, flush + fsync,
rename to the final name, fsync of the directory (where the protocol has one), then the
file is read back and its SHA-256 compared with the archive's. A failure removes the
temporary file, so no partial archive ever sits under a final name.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from edge.backup.archive import COPY_CHUNK, NAME_RE, parse_name
from edge.backup.faults import pause_point
from edge.backup.pacing import REMOVE_STEP, DirtyLimiter, remove_file_gently
from edge.errors import FaceproError
from edge.files import fsync_dir

log = logging.getLogger(__name__)

TEMP_PREFIX = ".facepro_partial_"
HEADROOM_BYTES = 1 << 20


class TargetError(FaceproError):
    """The target cannot be used; the message names the target and the reason."""


class Target:
    kind = "?"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.keep: int | None = spec.get("keep")

    # -- primitives each kind implements ------------------------------------------------
    def check(self) -> None:
        """Raise TargetError unless the target is present and usable."""

    def free_bytes(self) -> int:
        raise NotImplementedError

    def _open_write(self, temp: str) -> BinaryIO:
        raise NotImplementedError

    def _sync_written(self, fh: BinaryIO) -> None:
        fh.flush()

    def _rename(self, temp: str, final: str) -> None:
        raise NotImplementedError

    def _sync_dir(self) -> None:
        return None

    def _exists(self, name: str) -> bool:
        raise NotImplementedError

    def names(self) -> list[str]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def open_read(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.kind} target {self.name!r}"

    def close(self) -> None:
        """Release connections (SMB); safe to call more than once."""

    # -- shared behaviour -----------------------------------------------------------------
    def _prepare_store(self, source: Path, name: str) -> str:
        """Checks before writing ``name``: a valid archive name, the target usable, enough
        free space, no archive of that name. Returns the temporary name to write first."""
        if not NAME_RE.match(name):
            raise TargetError(f"{self.describe()}: refusing to write {name!r} (not an archive name)")
        self.check()
        size = source.stat().st_size
        free = self.free_bytes()
        if free < size + HEADROOM_BYTES:
            raise TargetError(f"{self.describe()}: not enough free space ({free} bytes free, "
                              f"the archive needs {size})")
        if self._exists(name):
            raise TargetError(f"{self.describe()}: {name} already exists")
        return f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}_{name}"

    def store(self, source: Path, name: str, sha256: str, progress: Callable[[int], None] | None = None) -> None:
        """Copy ``source`` to ``name`` on the target atomically, then read it back and verify."""
        temp = self._prepare_store(source, name)
        try:
            with open(source, "rb") as src, self._open_write(temp) as dst:
                limiter = DirtyLimiter(dst) if hasattr(dst, "fileno") else None
                while chunk := src.read(COPY_CHUNK):
                    dst.write(chunk)
                    if limiter is not None:
                        limiter.wrote(len(chunk))
                    if progress:
                        progress(len(chunk))
                    pause_point("target-writing")
                self._sync_written(dst)
            self._rename(temp, name)
        except BaseException as exc:
            self._discard(temp)
            if isinstance(exc, OSError):
                raise TargetError(f"{self.describe()}: writing {name} failed: {exc.strerror or exc}") from exc
            raise
        self._sync_dir()
        actual = self.checksum(name)
        if actual != sha256:
            self._discard(name)
            raise TargetError(f"{self.describe()}: {name} read back with a different checksum; removed")

    def checksum(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open_read(name) as fh:
            while chunk := fh.read(COPY_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _discard(self, name: str) -> None:
        try:
            self.remove(name)
        except Exception:  # the original failure matters more
            log.warning("%s: could not remove %s", self.describe(), name)

    def clean_partials(self, device_id: str | None = None) -> int:
        """Remove temporary files left by a killed write (only this device's on a shared target)."""
        removed = 0
        mark = f"_facepro_backup_{device_id}_" if device_id else ""
        for name in self._all_names():
            if name.startswith(TEMP_PREFIX) and mark in name:
                self._discard(name)
                removed += 1
        return removed

    def _all_names(self) -> list[str]:
        return self.names()

    def backups(self) -> list[dict[str, Any]]:
        """Archives on the target, oldest first: {target, name, size, created_at, encrypted}."""
        items = []
        for name in self.names():
            info = parse_name(name)
            if info is None:
                continue
            try:
                size = self.size(name)
            except (OSError, TargetError):
                continue
            items.append({"target": self.name, "name": name, "size": size, "created_at": info["created_at"],
                          "encrypted": info["encrypted"], "device": info["device"]})
        items.sort(key=lambda item: (item["created_at"], item["name"]))
        return items


# -- local directories and mount points --------------------------------------------------

class LocalTarget(Target):
    kind = "local"
    create_dir = True

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.path = Path(spec["path"])
        subdir = spec.get("subdir")
        self.dir = self.path / subdir if subdir else self.path

    def describe(self) -> str:
        return f"{self.kind} target {self.name!r} ({self.dir})"

    def check(self) -> None:
        if self.create_dir:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TargetError(f"{self.describe()}: cannot create the directory: {exc.strerror}") from exc
        if not self.dir.is_dir():
            raise TargetError(f"{self.describe()}: directory does not exist")
        if not os.access(self.dir, os.W_OK):
            raise TargetError(f"{self.describe()}: directory is not writable")

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.dir).free

    def _open_write(self, temp: str) -> BinaryIO:
        return open(self.dir / temp, "xb")

    def _sync_written(self, fh: BinaryIO) -> None:
        fh.flush()
        os.fsync(fh.fileno())

    def _rename(self, temp: str, final: str) -> None:
        os.rename(self.dir / temp, self.dir / final)

    def _sync_dir(self) -> None:
        fsync_dir(self.dir)

    def _exists(self, name: str) -> bool:
        return (self.dir / name).exists()

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if p.is_file() and not p.is_symlink())

    def size(self, name: str) -> int:
        return (self.dir / name).stat().st_size

    def open_read(self, name: str) -> BinaryIO:
        return open(self.dir / name, "rb")

    def remove(self, name: str) -> None:
        path = self.dir / name
        if not name.startswith(TEMP_PREFIX) and path.is_file() and path.stat().st_size > REMOVE_STEP:
            # Shrunk in steps (see remove_file_gently) under a temporary name, so a cut-off
            # removal leaves a partial file that clean_partials sweeps, never a short archive.
            temp = self.dir / f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}_{name}"
            os.rename(path, temp)
            path = temp
        remove_file_gently(path)

    def local_path(self, name: str) -> Path:
        return self.dir / name


def _mountinfo() -> list[dict[str, str]]:
    """/proc/self/mountinfo as {mount_point, source, fstype, major_minor}."""
    entries: list[dict[str, str]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return entries
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 2:
            continue
        mount_point = fields[4].encode().decode("unicode_escape")
        entries.append({"mount_point": mount_point, "major_minor": fields[2], "fstype": rest[0], "source": rest[1]})
    return entries


class MountTarget(LocalTarget):
    """A directory that must be a mount point of another filesystem than ``/`` (usb, mounted).

    The directory is never created: a missing or unmounted drive must not turn into a
    folder on the root filesystem that quietly fills it up.
    """
    create_dir = False
    kind = "usb"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.kind = spec["type"]

    def check(self) -> None:
        mount = self.path
        what = "drive" if self.kind == "usb" else "share"
        if not mount.is_dir():
            raise TargetError(f"{self.describe()}: {mount} does not exist (is the {what} plugged in and mounted?)")
        if not os.path.ismount(mount):
            raise TargetError(f"{self.describe()}: {mount} is not a mount point (the {what} is not mounted); "
                              "nothing was written")
        if os.stat(mount).st_dev == os.stat("/").st_dev:
            raise TargetError(f"{self.describe()}: {mount} is on the root filesystem, not a separate {what}")
        self._check_pin(mount)
        if self.dir != self.path:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)  # "fleet/{device_id}" on a fresh drive
            except OSError as exc:
                raise TargetError(f"{self.describe()}: cannot create {self.dir}: {exc.strerror}") from exc
        if not os.access(self.dir, os.W_OK):
            raise TargetError(f"{self.describe()}: {self.dir} is not writable (mounted read-only?)")

    def _check_pin(self, mount: Path) -> None:
        label, fs_uuid = self.spec.get("label"), self.spec.get("uuid")
        if not label and not fs_uuid:
            return
        entry = next((e for e in _mountinfo() if os.path.realpath(e["mount_point"]) == os.path.realpath(mount)), None)
        device = os.path.realpath(entry["source"]) if entry else None
        for key, value, folder in (("label", label, "by-label"), ("uuid", fs_uuid, "by-uuid")):
            if not value:
                continue
            link = Path("/dev/disk") / folder / value
            if not link.exists():
                raise TargetError(f"{self.describe()}: no filesystem with {key} {value!r} is attached")
            if device is None or os.path.realpath(link) != device:
                raise TargetError(f"{self.describe()}: the filesystem mounted at {mount} is not the one "
                                  f"with {key} {value!r}")
