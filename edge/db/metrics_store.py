"""Telemetry's tables: one-minute metric aggregates and alert transitions (migration 007).

One connection, shared by the telemetry sampler thread (writes) and readers such as the
status page (``load_minutes``, ``alert_history``), serialised by a lock.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.db.connection import connect, inserted_id, transaction


@dataclass(frozen=True)
class MinuteRow:
    minute: int  # unix time of the minute's start
    metric: str
    label: str
    avg: float
    min: float
    max: float
    count: int


class MetricsStore:
    def __init__(self, db_path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.db_path = Path(db_path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection = connect(db_path, busy_timeout_ms=busy_timeout_ms,
                                                 check_same_thread=False)

    def write_minutes(self, rows: Iterable[MinuteRow]) -> int:
        """Insert minute aggregates in one transaction; a minute already stored (a restart
        inside the same minute) is merged: count-weighted average, min of mins, max of maxes."""
        params = [(r.minute, r.metric, r.label, r.avg, r.min, r.max, r.count) for r in rows if r.count > 0]
        if not params:
            return 0
        with self._lock, transaction(self._conn):
            self._conn.executemany(
                """INSERT INTO metrics_minutely (minute, metric, label, avg, min, max, count)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (minute, metric, label) DO UPDATE SET
                     avg = (avg * count + excluded.avg * excluded.count) / (count + excluded.count),
                     min = MIN(min, excluded.min),
                     max = MAX(max, excluded.max),
                     count = count + excluded.count""",
                params)
        return len(params)

    def load_minutes(self, since: float, until: float | None = None) -> list[MinuteRow]:
        sql = "SELECT minute, metric, label, avg, min, max, count FROM metrics_minutely WHERE minute >= ?"
        args: list[Any] = [int(since)]
        if until is not None:
            sql += " AND minute < ?"
            args.append(int(until))
        sql += " ORDER BY minute"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [MinuteRow(*tuple(row)) for row in rows]

    def purge(self, before: float, before_iso: str) -> int:
        """Delete minute aggregates older than ``before`` (unix time) and alert transitions
        older than ``before_iso`` (ISO 8601 UTC, the format of ``created_at``)."""
        with self._lock, transaction(self._conn):
            n = self._conn.execute("DELETE FROM metrics_minutely WHERE minute < ?", (int(before),)).rowcount
            n += self._conn.execute("DELETE FROM alert_history WHERE created_at < ?", (before_iso,)).rowcount
        return n

    def record_alert(self, alert: str, subject: str, state: str, value: float | None, message: str,
                     at: str) -> int:
        with self._lock, transaction(self._conn):
            cur = self._conn.execute(
                "INSERT INTO alert_history (alert, subject, state, value, message, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (alert, subject, state, value, message, at))
            return inserted_id(cur)

    def close_open_alerts(self, at: str, message: str) -> int:
        """Record ``cleared`` for every (alert, subject) whose latest transition is ``raised``:
        after a restart the rules start from scratch, and one still true is raised anew."""
        with self._lock, transaction(self._conn):
            cur = self._conn.execute(
                "INSERT INTO alert_history (alert, subject, state, value, message, created_at) "
                "SELECT h.alert, h.subject, 'cleared', NULL, ?, ? FROM alert_history h "
                "WHERE h.state = 'raised' AND h.id = (SELECT MAX(id) FROM alert_history l "
                "WHERE l.alert = h.alert AND l.subject = h.subject)", (message, at))
            return cur.rowcount

    def alert_history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest transitions first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, alert AS name, subject, state, value, message, created_at AS at "
                "FROM alert_history ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall()
        return [dict(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
