"""The ``backup_runs`` log (migration 006): one row per backup/restore attempt."""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.db.connection import connect
from edge.timestamps import db_text

log = logging.getLogger(__name__)

_COLUMNS = ("id", "operation", "target", "archive", "result", "size_bytes", "sha256", "duration_s",
            "error", "includes", "started_at", "finished_at")


class BackupRunStore:
    """Short-lived connections per call: the log is written rarely and from several threads."""

    def __init__(self, db_path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.db_path = Path(db_path)
        self.busy_timeout_ms = busy_timeout_ms

    def _conn(self) -> sqlite3.Connection | None:
        if not self.db_path.exists():
            return None
        conn = connect(self.db_path, busy_timeout_ms=self.busy_timeout_ms)
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='backup_runs'").fetchone() is None:
            conn.close()
            log.warning("%s has no backup_runs table (migration 006 not applied); not recorded", self.db_path)
            return None
        return conn

    def record(self, operation: str, result: str, *, target: str | None = None, archive: str | None = None,
               size_bytes: int | None = None, sha256: str | None = None, duration_s: float | None = None,
               error: str | None = None, includes: list[str] | None = None,
               started_at: datetime | None = None) -> int | None:
        conn = self._conn()
        if conn is None:
            return None
        try:
            cur = conn.execute(
                "INSERT INTO backup_runs (operation, target, archive, result, size_bytes, sha256, duration_s,"
                " error, includes, started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (operation, target, archive, result, size_bytes, sha256, duration_s, error,
                 ",".join(includes) if includes else None, db_text(started_at), db_text()))
            return None if cur.lastrowid is None else int(cur.lastrowid)
        finally:
            conn.close()

    def recent(self, limit: int = 50, operation: str | None = None) -> list[dict[str, Any]]:
        conn = self._conn()
        if conn is None:
            return []
        try:
            sql = f"SELECT {', '.join(_COLUMNS)} FROM backup_runs"
            args: tuple[Any, ...] = ()
            if operation:
                sql += " WHERE operation = ?"
                args = (operation,)
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", args + (limit,)).fetchall()
            return [dict(row) for row in rows]
        finally:
            conn.close()

    def last(self, operation: str = "create", result: str | None = None) -> dict[str, Any] | None:
        conn = self._conn()
        if conn is None:
            return None
        try:
            sql = f"SELECT {', '.join(_COLUMNS)} FROM backup_runs WHERE operation = ?"
            args: tuple[Any, ...] = (operation,)
            if result:
                sql += " AND result = ?"
                args += (result,)
            row = conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
            return dict(row) if row else None
        finally:
            conn.close()

    def good_archives(self, target: str) -> set[str]:
        """Archives on ``target`` that were written and verified (or verified later)."""
        conn = self._conn()
        if conn is None:
            return set()
        try:
            rows = conn.execute(
                "SELECT DISTINCT archive FROM backup_runs WHERE target = ? AND result = 'ok'"
                " AND operation IN ('create', 'verify', 'import') AND archive IS NOT NULL", (target,)).fetchall()
            return {row[0] for row in rows}
        finally:
            conn.close()

    def own_archives(self, target: str) -> list[str]:
        """Archives this device wrote to ``target`` itself (a successful ``create``), oldest
        first by the log's own order: the row id, which the device assigns as it goes, never
        the archive's name. An archive imported under a name after it was created is not
        the device's own any more."""
        conn = self._conn()
        if conn is None:
            return []
        try:
            rows = conn.execute(
                "SELECT archive, MAX(id) AS created FROM backup_runs c WHERE target = ? AND operation = 'create'"
                " AND result = 'ok' AND archive IS NOT NULL AND NOT EXISTS (SELECT 1 FROM backup_runs i"
                " WHERE i.target = c.target AND i.archive = c.archive AND i.operation = 'import' AND i.id > c.id)"
                " GROUP BY archive ORDER BY created", (target,)).fetchall()
            return [row[0] for row in rows]
        finally:
            conn.close()

    def imported_archives(self, target: str) -> set[str]:
        """Archives that arrived on ``target`` by import (web upload), not written by this device."""
        conn = self._conn()
        if conn is None:
            return set()
        try:
            rows = conn.execute("SELECT DISTINCT archive FROM backup_runs WHERE target = ? AND operation = 'import'"
                                " AND archive IS NOT NULL", (target,)).fetchall()
            return {row[0] for row in rows}
        finally:
            conn.close()
