"""One backup or restore at a time per data directory, across threads and processes.

A thread lock keeps two jobs of one service apart; an ``flock`` on ``<data_dir>/.backup.lock``
keeps the service and a ``facepro backup`` command apart. Neither waits: a second caller is
refused at once with a :class:`BackupBusy` that says who holds the lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from edge.backup.errors import BackupBusy

LOCK_FILE = ".backup.lock"


class BackupLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        if not self._thread_lock.acquire(blocking=False):
            raise BackupBusy("another backup or restore is already running in this service")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise BackupBusy(f"another backup or restore is running on {self.data_dir} "
                                      "(the service or another facepro command)") from None
                yield
            finally:
                os.close(fd)
        finally:
            self._thread_lock.release()
