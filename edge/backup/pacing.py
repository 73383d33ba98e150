"""Backup I/O that keeps the service's own disk writes fast: written data is flushed as it
goes, and large files are removed in steps (see scripts/bench_backup.py for the effect)."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

REMOVE_STEP = 16 << 20


def remove_file_gently(path: Path, step: int = REMOVE_STEP) -> None:
    """Delete a file; a large one is shrunk ``step`` bytes at a time first.

    Unlinking a file of hundreds of MB frees all its extents in one ext4 journal
    transaction, and every fsync on that filesystem meanwhile waits for it (the
    service's WAL checkpoints: 30-45 ms for 200 MB here). Truncating in steps spreads
    the work over small transactions (under 10 ms each). Only for files nobody needs
    any more: a cut-off run leaves a shorter file, never a changed one.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    except OSError:  # a link, a directory, no write permission: a plain unlink decides
        Path(path).unlink(missing_ok=True)
        return
    try:
        info = os.fstat(fd)
        size = info.st_size if stat.S_ISREG(info.st_mode) else 0
        while size > step:
            size -= step
            os.ftruncate(fd, size)
    finally:
        os.close(fd)
    Path(path).unlink(missing_ok=True)


def remove_tree_gently(root: Path, step: int = REMOVE_STEP) -> None:
    """``shutil.rmtree(root, ignore_errors=True)``, large files removed gently first."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            try:
                if path.lstat().st_size > step:
                    remove_file_gently(path, step)
            except OSError:
                pass
    shutil.rmtree(root, ignore_errors=True)


class DirtyLimiter:
    """fdatasync a file being written every ``every`` bytes.

    A backup writes hundreds of MB; left to the kernel, that dirty data is flushed in one
    burst, and the service's own commits (SQLite's WAL checkpoint fsyncs) queue behind it.
    Flushing as we go keeps each wait short (the writer-stall benchmark shows the effect).
    """

    def __init__(self, fh: Any, every: int = 8 << 20) -> None:
        self.fh = fh
        self.every = every
        self.pending = 0

    def wrote(self, n: int) -> None:
        self.pending += n
        if self.pending >= self.every:
            self.pending = 0
            self.fh.flush()
            os.fdatasync(self.fh.fileno())
