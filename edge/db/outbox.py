"""The MQTT event outbox: queries over ``events.published_at`` / ``events.skipped_at``.

An event row is unpublished while both columns are NULL. The MQTT publisher reads
unpublished rows in id order a window at a time (never the whole backlog), marks them
published once the broker acknowledged them, and bounds the backlog by age and count:
rows past the bound get ``skipped_at`` and stay in the table.

One ``EventOutbox`` belongs to one thread (the publisher's worker): the connection is
opened lazily in the thread that first uses it.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from typing import Any

from edge.db.connection import DEFAULT_BUSY_TIMEOUT_MS, connect, transaction

UNPUBLISHED = "published_at IS NULL AND skipped_at IS NULL"
SKIPPED = "skipped_at IS NOT NULL AND published_at IS NULL"
NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
ROW = ("id, event_type, object_label, confidence, snapshot_path, identification_method, camera_name, created_at,"
       " event_uid, detector_score")


class EventOutbox:
    def __init__(self, db_path: str | os.PathLike[str], busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.db_path = db_path
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.db_path, busy_timeout_ms=self.busy_timeout_ms)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def fetch_after(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` unpublished rows with ``id > after_id``, oldest first."""
        rows = self.conn.execute(
            f"SELECT {ROW} FROM events WHERE id > ? AND {UNPUBLISHED} ORDER BY id LIMIT ?",
            (int(after_id), int(limit)),
        ).fetchall()
        return [dict(row) for row in rows]

    def mark_published(self, ids: Iterable[int]) -> int:
        ids = sorted(set(int(i) for i in ids))
        if not ids:
            return 0
        changed = 0
        with transaction(self.conn):
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                cur = self.conn.execute(
                    f"UPDATE events SET published_at = {NOW} WHERE id IN ({marks}) AND published_at IS NULL",
                    chunk)
                changed += cur.rowcount
        return changed

    def apply_bounds(self, max_age_s: float, max_count: int) -> int:
        """Skip unpublished rows older than ``max_age_s`` or beyond the newest ``max_count``.

        Returns how many rows this call skipped.
        """
        skipped = 0
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE events SET skipped_at = {NOW} WHERE {UNPUBLISHED}"
                " AND julianday(created_at) < julianday('now') - ? / 86400.0",
                (float(max_age_s),))
            skipped += cur.rowcount
            row = self.conn.execute(
                f"SELECT id FROM events WHERE {UNPUBLISHED} ORDER BY id DESC LIMIT 1 OFFSET ?",
                (int(max_count) - 1,)).fetchone()
            if row is not None:
                cur = self.conn.execute(
                    f"UPDATE events SET skipped_at = {NOW} WHERE {UNPUBLISHED} AND id < ?", (row["id"],))
                skipped += cur.rowcount
        return skipped

    def counts(self) -> dict[str, int]:
        """``unpublished`` (still to send) and ``skipped`` (left unpublished by the bound)."""
        unpublished = self.conn.execute(f"SELECT COUNT(*) FROM events WHERE {UNPUBLISHED}").fetchone()[0]
        skipped = self.conn.execute(f"SELECT COUNT(*) FROM events WHERE {SKIPPED}").fetchone()[0]
        return {"unpublished": int(unpublished), "skipped": int(skipped)}

    def last_seen_people(self) -> list[dict[str, Any]]:
        """The newest event row per ``object_label`` (callers decide which labels are people)."""
        rows = self.conn.execute(
            f"SELECT {ROW} FROM events WHERE id IN"
            " (SELECT MAX(id) FROM events WHERE object_label IS NOT NULL GROUP BY object_label)"
            " ORDER BY id").fetchall()
        return [dict(row) for row in rows]
