"""SMB shares written directly with smbprotocol (no OS mount needed)."""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from edge.backup.archive import COPY_CHUNK
from edge.backup.targets import Target, TargetError


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
