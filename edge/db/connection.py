"""Connection policy, in one place: WAL, foreign keys on, a busy timeout, autocommit mode.

Connections are opened in autocommit mode (``isolation_level=None``) so that every
transaction in the code base is explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``) and nothing
is committed behind our back, the way ``executescript`` or the legacy implicit mode do.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edge.files import fsync_dir

DEFAULT_BUSY_TIMEOUT_MS = 5000
SNAPSHOT_SYNC_BYTES = 8 << 20


WAL_SIZE_LIMIT_BYTES = 1 << 20


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
        _enable_wal(conn, busy_timeout_ms)
        # NORMAL is durable across power loss in WAL mode except for the last commits
        # before the cut; they are rolled back, never half-applied.
        conn.execute("PRAGMA synchronous = NORMAL")
        # After a checkpoint the WAL is cut back to this size instead of staying at its peak.
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
    return conn


def checkpoint(conn: sqlite3.Connection) -> tuple[bool, int, int]:
    """Copy the WAL into the database and truncate it (``wal_checkpoint(TRUNCATE)``).

    Returns (complete, wal_frames, checkpointed_frames); not complete means another connection
    holds a read snapshot or a write, so the WAL could not be emptied this time.
    """
    busy, frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0, int(frames), int(done)


def _enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switch to WAL (it then persists in the file). Changing the journal mode of a new
    database while another process does the same can fail with "database is locked" at
    once, without the busy handler (two processes booting together): retry until the busy
    timeout is spent, as for any other lock."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


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


def online_backup(
    source: sqlite3.Connection,
    dest_path: str | os.PathLike[str],
    pages: int = 256,
    progress: Callable[[int, int], None] | None = None,
    sync_every_bytes: int = SNAPSHOT_SYNC_BYTES,
) -> None:
    """Copy a live database to ``dest_path`` with SQLite's online backup API.

    Written to a temporary name, fsynced and renamed, so ``dest_path`` either holds a
    complete snapshot or does not exist. Copies ``pages`` at a time so writers are not
    held off for the whole copy.

    Unless ``source`` is already inside a transaction, a read transaction is held on it
    for the whole copy: every step then reads the same snapshot (in WAL mode other
    connections keep committing meanwhile), and the copy is not restarted each time
    another connection writes, which under a steady writer would never finish.
    ``progress(remaining_pages, total_pages)`` is called after each step. ``source`` must
    not be shared with other threads during the copy.

    The copy is flushed to disk (``fdatasync``) every ``sync_every_bytes`` as it is
    written. Left to SQLite, the whole snapshot (hundreds of MB) sits dirty in the page
    cache until the final commit syncs it in one burst; on ext4 (data=ordered) every
    other fsync on the filesystem meanwhile waits for that burst, including the WAL
    checkpoint a writer's commit runs, which stalled the service's commits for up to
    ~200 ms (scripts/bench_backup.py). Small flushes keep each such wait short.
    """
    dest = Path(dest_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        tmp.unlink()
    began = False
    if not source.in_transaction:
        source.execute("BEGIN DEFERRED")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # starts the read snapshot
        began = True
    target = sqlite3.connect(str(tmp), isolation_level=None)
    sync_fd = -1
    try:
        # SQLite created the file on open; fdatasync through our own descriptor flushes
        # the pages SQLite has written through its own (the cache is per file).
        sync_fd = os.open(tmp, os.O_RDONLY)
        page_size = int(source.execute("PRAGMA page_size").fetchone()[0])
        sync_pages = max(1, sync_every_bytes // page_size) if sync_every_bytes > 0 else 0
        synced = 0

        def step(_status: int, remaining: int, total: int) -> None:
            nonlocal synced
            copied = total - remaining
            if sync_pages and copied - synced >= sync_pages:
                os.fdatasync(sync_fd)
                synced = copied
            if progress:
                progress(remaining, total)

        source.backup(target, pages=pages, progress=step)
        target.execute("PRAGMA journal_mode = DELETE")
    except BaseException:
        target.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if sync_fd >= 0:
            os.close(sync_fd)
        if began and source.in_transaction:
            source.execute("COMMIT")
    target.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


def integrity_check(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check``'s lines: ``["ok"]`` for a sound database."""
    return [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]


def data_version(conn: sqlite3.Connection) -> int:
    """Changes when another connection commits to the file (``PRAGMA data_version``)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just made (never None after a successful INSERT)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise sqlite3.DatabaseError("INSERT returned no row id")
    return int(rowid)
