"""The SQL the backup and restore code runs on whole database files: what a snapshot
holds, the restore's switch-over copy, and carrying the device's backup log across it."""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from edge.db.connection import connect, integrity_check

COUNTED_TABLES = ("users", "face_encodings", "events")


def snapshot_summary(path: Path) -> tuple[int, dict[str, int]]:
    """(schema version, row counts of the main tables) of a database snapshot.

    A snapshot without ``schema_migrations`` raises ``sqlite3.Error``; a missing counted
    table is left out of the counts.
    """
    snap = connect(path, readonly=True)
    try:
        row = snap.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        version = int(row[0] or 0)
        counts: dict[str, int] = {}
        for table in COUNTED_TABLES:
            with contextlib.suppress(Exception):
                counts[table] = int(snap.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        snap.close()
    return version, counts


def schema_version_or_zero(path: Path) -> int:
    """The schema version of the database at ``path``; 0 when it cannot be read."""
    with contextlib.suppress(Exception):
        conn = connect(path, readonly=True)
        try:
            return int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0)
        finally:
            conn.close()
    return 0


def integrity(conn: sqlite3.Connection) -> str:
    """``PRAGMA integrity_check``'s first line: ``"ok"`` for a sound database."""
    return integrity_check(conn)[0]


def checkpoint_truncate(conn: sqlite3.Connection) -> None:
    """Fold the WAL into the main file, so the file alone is the whole database."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def copy_into_live(staged: Path, live_path: Path, busy_timeout_ms: int) -> None:
    """Replace the live database's content with ``staged`` in one write transaction
    (readers see the old or the new database), then check it."""
    src = connect(staged, busy_timeout_ms=busy_timeout_ms)
    dst = connect(live_path, busy_timeout_ms=busy_timeout_ms)
    try:
        src_page = src.execute("PRAGMA page_size").fetchone()[0]
        dst_page = dst.execute("PRAGMA page_size").fetchone()[0]
        if src_page != dst_page and dst.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            dst.execute("PRAGMA journal_mode = DELETE")
        # One step: the whole copy is a single write transaction on the live database.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode = WAL")
        result = integrity(dst)
        if result != "ok":
            raise RuntimeError(f"{live_path}: integrity_check after restore failed: {result}")
    finally:
        src.close()
        dst.close()


def carry_backup_log(live_db: Path, staged: sqlite3.Connection) -> None:
    """Replace the ``backup_runs`` rows in ``staged`` with the live database's (the columns
    both have). Nothing happens when the live database or its log is missing."""
    if not live_db.exists():
        return
    live = connect(live_db, readonly=True)
    try:
        if live.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='backup_runs'").fetchone() is None:
            return
        live_cols = [r[1] for r in live.execute("PRAGMA table_info(backup_runs)")]
        staged_cols = {r[1] for r in staged.execute("PRAGMA table_info(backup_runs)")}
        cols = [c for c in live_cols if c in staged_cols]
        rows = live.execute(f"SELECT {', '.join(cols)} FROM backup_runs ORDER BY id").fetchall()
    finally:
        live.close()
    if not staged_cols:
        return
    staged.execute("BEGIN IMMEDIATE")
    try:
        staged.execute("DELETE FROM backup_runs")
        staged.executemany(f"INSERT INTO backup_runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [tuple(r) for r in rows])
        staged.execute("COMMIT")
    except BaseException:
        staged.rollback()
        raise


def inspect_snapshot(path: Path) -> tuple[str, list[int]]:
    """(``integrity_check``'s first line, the applied migration versions) of a database file
    from an archive, opened read-only. Raises ``sqlite3.Error`` for a file SQLite cannot read;
    versions are [] when it has no ``schema_migrations`` table."""
    conn = connect(path, readonly=True)
    try:
        conn.execute("PRAGMA trusted_schema = OFF")  # the file is the archive's: run none of its SQL functions
        check = integrity(conn)
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone() \
                is None:
            return check, []
        versions = [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        conn.close()
    return check, versions
