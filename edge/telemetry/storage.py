"""Whether the data disk is full, as the service's writers find it.

A write that fails with ENOSPC/EDQUOT (a snapshot, an event row: SQLite's "database or
disk is full") makes the state ``disk_full``; it clears once the free space under the data
directory is back above ``RECOVER_BYTES`` and a write succeeds again. The state shows in
``/api/health`` and ``/api/status``, the telemetry snapshot (and so MQTT), and the
``disk_full`` alert rule. Each change is logged once; the failures in between are counted,
never logged one by one.

While full, the writer hands what it could not write to :meth:`DiskFullState.hold` (at most
``max_held`` items; beyond that the oldest is dropped and counted as lost) and, every
``retry_s`` once the space is back, :meth:`DiskFullState.flush` writes them in order.
"""
from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.timestamps import iso_utc

log = logging.getLogger(__name__)

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
SQLITE_FULL = 13
# Space needed before writing is tried again: a few snapshots and the WAL's next pages.
RECOVER_BYTES = 4 * 1024 * 1024
MAX_HELD = 1000  # events held in memory while full
RETRY_S = 5.0  # while full, how often writing is tried again


def is_disk_full(exc: BaseException) -> bool:
    """True for the errors a full disk (or an exhausted quota) gives."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error):
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        return "database or disk is full" in str(exc)
    return False


def free_bytes(path: Path) -> int | None:
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(shutil.disk_usage(probe).free)
    except OSError:
        return None


class DiskFullState:
    """Shared by the event writer (which reports) and health, status, telemetry (which read)."""

    def __init__(self, data_dir: Path, *, bus: Any = None, recover_bytes: int = RECOVER_BYTES,
                 max_held: int = MAX_HELD, retry_s: float = RETRY_S, clock: Any = time.time) -> None:
        self.data_dir = Path(data_dir)
        self.max_held = int(max_held)
        self.retry_s = float(retry_s)
        self._held: deque[Any] = deque()
        self._flush_lock = threading.RLock()
        self._retry_at = 0.0
        self.bus = bus
        self.recover_bytes = int(recover_bytes)
        self.clock = clock
        self._lock = threading.Lock()
        self._full = False
        self._since: float | None = None
        self._reason: str | None = None
        self.failures = 0  # failed writes while full
        self.lost = 0  # events that could not be held (memory bound) and were never written
        self.written_late = 0

    @property
    def full(self) -> bool:
        return self._full

    def report(self, exc: BaseException, what: str) -> bool:
        """A write of ``what`` failed with ``exc``: True (and the state is full) if it is a full disk."""
        if not is_disk_full(exc):
            return False
        with self._lock:
            self.failures += 1
            changed = not self._full
            if changed:
                self._full, self._since = True, self.clock()
                self._reason = f"{what}: {exc}"
        if changed:
            log.error("data disk full under %s (%s): events are kept in memory and sent over MQTT until "
                      "space returns; free some space", self.data_dir, self._reason)
            self._announce()
        return True

    def space_back(self) -> bool:
        """While full: True when there is room to try writing again (free > ``recover_bytes``)."""
        free = free_bytes(self.data_dir)
        return free is not None and free > self.recover_bytes

    def retry_due(self) -> bool:
        """While full, True at most once per ``retry_s``, and only when the space is back."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + self.retry_s
        return self.space_back()

    @property
    def pending(self) -> int:
        return len(self._held)

    def hold(self, item: Any) -> None:
        """Keep ``item`` (not written: the disk is full) for :meth:`flush`."""
        with self._flush_lock:
            if len(self._held) >= self.max_held:
                self._held.popleft()
                self.lost += 1
            self._held.append(item)

    def flush(self, write: Callable[[Any], None]) -> None:
        """Write the held items in order; one that fails stays held (and the error is raised)."""
        with self._flush_lock:
            while self._held:
                write(self._held[0])
                self._held.popleft()
                self.written_late += 1

    def retry(self, write: Callable[[Any], None], what: str) -> None:
        """While full and once the space is back: flush, and clear the state if that worked."""
        if not self._full or not self.retry_due():
            return
        try:
            self.flush(write)
        except Exception as exc:
            if not self.report(exc, what):
                raise
            return
        self.recovered()

    def recovered(self) -> None:
        """A write succeeded after the disk was full."""
        with self._lock:
            changed = self._full
            self._full, self._since, self._reason = False, None, None
        if changed:
            log.warning("data disk under %s has space again: writing resumed (%d event(s) written late, "
                        "%d lost while full)", self.data_dir, self.written_late, self.lost)
            self._announce()

    def _announce(self) -> None:
        if self.bus is not None:
            self.bus.publish("storage", self.status())

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"disk_full": self._full, "since": iso_utc(self._since) if self._since else None,
                    "reason": self._reason, "failed_writes": self.failures, "events_pending": self.pending,
                    "events_lost": self.lost, "events_written_late": self.written_late}
