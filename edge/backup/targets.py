"""Where archives go: a local directory, a USB drive, an SMB share, an OS-mounted share.

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
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from edge.backup.faults import pause_point
from edge.backup.archive import (COPY_CHUNK, NAME_RE, REMOVE_STEP, DirtyLimiter, parse_name,
                                 remove_file_gently)

log = logging.getLogger(__name__)

TEMP_PREFIX = ".facepro_partial_"
HEADROOM_BYTES = 1 << 20


class TargetError(Exception):
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
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

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
    entries = []
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
                self.dir.mkdir(exist_ok=True)
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


# -- SMB shares ---------------------------------------------------------------------------

class SmbTarget(Target):
    """An SMB2/3 share written directly with smbprotocol (no OS mount needed).

    The password comes from settings and is never logged (it is a registered secret). A
    server that stops answering cannot hang the caller: each operation runs under a
    watchdog that gives up after ``timeout_s`` without progress and drops the connection.
    """
    kind = "smb"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.server: str = spec["server"]
        self.share: str = spec["share"]
        self.port: int = int(spec.get("port") or 445)
        self.timeout_s: float = float(spec.get("timeout_s") or 30)
        sub = (spec.get("subdir") or "").replace("/", "\\").strip("\\")
        self.base = "\\\\" + "\\".join(p for p in (self.server, self.share, sub) if p)
        self._registered = False
        self._progress_at = time.monotonic()
        # A private connection cache: credentials of one target never ride on another's
        # pooled session, and a dead server's connection can be abandoned without blocking.
        self._cache: dict[str, Any] = {}

    def _kw(self) -> dict[str, Any]:
        return {"port": self.port, "connection_cache": self._cache}

    def describe(self) -> str:
        return f"smb target {self.name!r} ({self.base})"

    def _p(self, name: str = "") -> str:
        return self.base + ("\\" + name if name else "")

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a worker; give up after timeout_s without progress."""
        import smbprotocol.exceptions

        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # re-raised in the caller
                box["error"] = exc

        self._progress_at = time.monotonic()
        worker = threading.Thread(target=work, name=f"smb-{self.name}", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            if worker.is_alive() and time.monotonic() - self._progress_at > self.timeout_s:
                self._drop_session()
                raise TargetError(f"{self.describe()}: {what}: the server did not answer within "
                                  f"{self.timeout_s:g} s")
        if "error" in box:
            exc = box["error"]
            if isinstance(exc, TargetError):
                raise exc
            if isinstance(exc, (OSError, smbprotocol.exceptions.SMBException, ValueError)):
                raise TargetError(f"{self.describe()}: {what}: {_smb_reason(exc)}") from None
            raise exc
        return box.get("value")

    def _drop_session(self) -> None:
        """Forget the connection; closing it (which may block on a dead server) happens
        in a daemon thread."""
        cache, self._cache = self._cache, {}
        self._registered = False

        def close() -> None:
            try:
                import smbclient

                smbclient.reset_connection_cache(connection_cache=cache)
            except Exception:
                pass

        threading.Thread(target=close, name=f"smb-close-{self.name}", daemon=True).start()

    def close(self) -> None:
        if self._cache:
            self._drop_session()

    def _session(self) -> None:
        if self._registered:
            return
        import smbclient

        self._call("connect", lambda: smbclient.register_session(
            self.server, username=self.spec.get("username"), password=self.spec.get("password"),
            port=self.port, connection_timeout=int(max(1, self.timeout_s)), connection_cache=self._cache))
        self._registered = True

    def check(self) -> None:
        import smbclient

        self._session()

        share = "\\\\" + self.server + "\\" + self.share
        self._call("open the share", lambda: smbclient.listdir(share, **self._kw()))
        if self._p() != share:
            def ensure_dir() -> None:
                if not smbclient.path.isdir(self._p(), **self._kw()):
                    smbclient.makedirs(self._p(), exist_ok=True, **self._kw())

            self._call("create the directory", ensure_dir)

    def free_bytes(self) -> int:
        import smbclient

        self._session()
        result = self._call("query free space", lambda: smbclient.stat_volume(self._p(), **self._kw()))
        return int(result.caller_available_size)

    def store(self, source: Path, name: str, sha256: str, progress: Callable[[int], None] | None = None) -> None:
        import smbclient

        temp = self._prepare_store(source, name)

        def upload() -> None:
            with open(source, "rb") as src, smbclient.open_file(self._p(temp), mode="xb", **self._kw()) as dst:
                while chunk := src.read(COPY_CHUNK):
                    dst.write(chunk)
                    self._progress_at = time.monotonic()
                    if progress:
                        progress(len(chunk))
                dst.flush()
            smbclient.rename(self._p(temp), self._p(name), **self._kw())

        try:
            self._call(f"writing {name}", upload)
        except BaseException:
            self._discard(temp)
            raise
        actual = self.checksum(name)
        if actual != sha256:
            self._discard(name)
            raise TargetError(f"{self.describe()}: {name} read back with a different checksum; removed")

    def checksum(self, name: str) -> str:
        import smbclient

        def read() -> str:
            digest = hashlib.sha256()
            with smbclient.open_file(self._p(name), mode="rb", **self._kw()) as fh:
                while chunk := fh.read(COPY_CHUNK):
                    digest.update(chunk)
                    self._progress_at = time.monotonic()
            return digest.hexdigest()

        return self._call(f"reading back {name}", read)

    def _exists(self, name: str) -> bool:
        import smbclient

        return bool(self._call("stat", lambda: smbclient.path.exists(self._p(name), **self._kw())))

    def names(self) -> list[str]:
        import smbclient

        self._session()
        return sorted(self._call("list", lambda: smbclient.listdir(self._p(), **self._kw())))

    def size(self, name: str) -> int:
        import smbclient

        return int(self._call("stat", lambda: smbclient.stat(self._p(name), **self._kw()).st_size))

    def download(self, name: str, dest: Path, progress: Callable[[int], None] | None = None) -> None:
        import smbclient

        def fetch() -> None:
            with smbclient.open_file(self._p(name), mode="rb", **self._kw()) as src, open(dest, "wb") as dst:
                while chunk := src.read(COPY_CHUNK):
                    dst.write(chunk)
                    self._progress_at = time.monotonic()
                    if progress:
                        progress(len(chunk))

        self._session()
        self._call(f"downloading {name}", fetch)

    def open_read(self, name: str) -> BinaryIO:
        raise TargetError("use download() for smb targets")

    def remove(self, name: str) -> None:
        import smbclient

        self._session()
        self._call(f"removing {name}", lambda: smbclient.remove(self._p(name), **self._kw()))


def _smb_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("STATUS_LOGON_FAILURE", "STATUS_BAD_NETWORK_NAME", "STATUS_ACCESS_DENIED",
                   "STATUS_DISK_FULL", "STATUS_OBJECT_NAME_COLLISION", "STATUS_OBJECT_NAME_NOT_FOUND"):
        if marker in text:
            return {"STATUS_LOGON_FAILURE": "logon failed (check username and password)",
                    "STATUS_BAD_NETWORK_NAME": "no such share on the server",
                    "STATUS_ACCESS_DENIED": "access denied",
                    "STATUS_DISK_FULL": "the share is full",
                    "STATUS_OBJECT_NAME_COLLISION": "the file already exists",
                    "STATUS_OBJECT_NAME_NOT_FOUND": "no such file or directory"}[marker]
    if isinstance(exc, ConnectionError) or "connect" in text.lower():
        return f"cannot connect: {text.splitlines()[0] if text else type(exc).__name__}"
    return text.splitlines()[0] if text else type(exc).__name__


DEVICE_PLACEHOLDER = "{device_id}"


def for_device(spec: dict[str, Any], device_id: str | None) -> dict[str, Any]:
    """The target as this device uses it: ``{device_id}`` in ``subdir`` becomes the device id,
    so one settings file (one image) gives every device its own folder on a shared target."""
    subdir = spec.get("subdir")
    if not subdir or DEVICE_PLACEHOLDER not in subdir:
        return spec
    if not device_id:
        raise TargetError(f"backup target {spec.get('name')!r}: subdir {subdir!r} needs the device id, "
                          "which is not known yet (it is created on the first start of facepro run)")
    return {**spec, "subdir": subdir.replace(DEVICE_PLACEHOLDER, device_id)}


def make_target(spec: dict[str, Any]) -> Target:
    kind = spec.get("type")
    if kind == "local":
        return LocalTarget(spec)
    if kind in ("usb", "mounted"):
        return MountTarget(spec)
    if kind == "smb":
        return SmbTarget(spec)
    raise TargetError(f"backup target {spec.get('name')!r}: unknown type {kind!r}")


def check_target(target: dict[str, Any], min_free_bytes: int = 100 << 20,
                 device_id: str | None = None) -> dict[str, Any]:
    """For ``facepro doctor``: {ok, free_bytes, detail}. Never raises for a failed check."""
    try:
        spec = dict(for_device(target, device_id))
        if spec.get("type") == "smb":
            spec["timeout_s"] = min(float(spec.get("timeout_s") or 30), 10.0)
        t = make_target(spec)
        t.check()
        free = t.free_bytes()
        if free < min_free_bytes:
            return {"ok": False, "free_bytes": free,
                    "detail": f"{t.describe()}: only {free // (1 << 20)} MiB free (want {min_free_bytes // (1 << 20)} MiB)"}
        count = len(t.backups())
        t.close()
        return {"ok": True, "free_bytes": free, "detail": f"{t.describe()}: ok, {count} backup(s), "
                                                             f"{free // (1 << 20)} MiB free"}
    except TargetError as exc:
        return {"ok": False, "free_bytes": None, "detail": str(exc)}
    except Exception as exc:  # a probe never raises
        return {"ok": False, "free_bytes": None, "detail": f"backup target {target.get('name')!r}: {exc}"}


def iter_specs(settings_targets: list[dict[str, Any]], name: str | None = None) -> Iterator[dict[str, Any]]:
    for spec in settings_targets:
        if name is None and not spec.get("enabled", True):
            continue
        if name is None or spec["name"] == name:
            yield spec
