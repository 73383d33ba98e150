"""Connection policy, in one place: WAL, foreign keys on, a busy timeout, autocommit mode.

Connections are opened in autocommit mode (``isolation_level=None``) so that every
transaction in the code base is explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``) and nothing
is committed behind our back, the way ``executescript`` or the legacy implicit mode do.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Iterator

DEFAULT_BUSY_TIMEOUT_MS = 5000


def connect(
    path: str | os.PathLike[str],
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    readonly: bool = False,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open a connection with the project's policy. ``":memory:"`` is supported."""
    target = str(path)
    if target != ":memory:" and not readonly:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    if readonly and target != ":memory:":
        uri = Path(target).absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=check_same_thread,
                               timeout=busy_timeout_ms / 1000)
    else:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=check_same_thread,
                               timeout=busy_timeout_ms / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if target != ":memory:" and not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across power loss in WAL mode except for the last commits
        # before the cut; they are rolled back, never half-applied.
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """``BEGIN <mode>`` ... ``COMMIT``, rolled back on any exception."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    else:
        conn.execute("COMMIT")


def online_backup(source: sqlite3.Connection, dest_path: str | os.PathLike[str], pages: int = 256) -> None:
    """Copy a live database to ``dest_path`` with SQLite's online backup API.

    Written to a temporary name, fsynced and renamed, so ``dest_path`` either holds a
    complete snapshot or does not exist. Copies ``pages`` at a time so writers are not
    held off for the whole copy.
    """
    dest = Path(dest_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        tmp.unlink()
    target = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        source.backup(target, pages=pages)
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
