"""The ``events`` table: insert recognition events, list them, and apply retention.

``created_at`` is UTC in SQLite's ``YYYY-MM-DD HH:MM:SS`` form; ``snapshot_path`` is relative
to the data directory (``snapshots/...``) or NULL when no snapshot was kept.
"""
from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from edge.db.connection import DEFAULT_BUSY_TIMEOUT_MS, checkpoint, connect, inserted_id, transaction
from edge.timestamps import db_text, iso_from_db

COLUMNS = ("id", "event_type", "object_label", "confidence", "snapshot_path", "identification_method",
           "camera_name", "created_at")


UNKNOWN_LABELS = {"", "unknown", "none", "null"}


def event_person(row: Mapping[str, Any]) -> str | None:
    """The recognised person's name, or None for an unknown face (whatever the label says)."""
    label = row.get("object_label")
    if label is None or "unknown" in str(row.get("event_type") or "").lower():
        return None
    if str(label).strip().lower() in UNKNOWN_LABELS:
        return None
    return str(label)


def event_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """One ``events`` row as the fields every reader shows (CLI, status page, MQTT pick
    theirs): id, type, label (as stored), person (:func:`event_person`), confidence,
    camera, method, timestamp (ISO 8601 UTC), snapshot_path (relative to the data dir);
    uid (the id published outside, unique across restores) and detector_score where the
    row has them (migration 009)."""
    data = dict(row)
    return {
        "id": int(data["id"]),
        "uid": data.get("event_uid"),
        "detector_score": data.get("detector_score"),
        "type": data.get("event_type"),
        "label": data.get("object_label"),
        "person": event_person(data),
        "confidence": data.get("confidence"),
        "camera": data.get("camera_name"),
        "method": data.get("identification_method"),
        "timestamp": iso_from_db(data.get("created_at")),
        "snapshot_path": data.get("snapshot_path"),
    }


class EventStore:
    """One connection, shared by the threads that record events (serialised by a lock)."""

    def __init__(self, db_path: str | os.PathLike[str], busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.db_path = db_path
        self._conn = connect(db_path, busy_timeout_ms=busy_timeout_ms, check_same_thread=False)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def checkpoint(self) -> tuple[bool, int, int]:
        """Empty the database's WAL (see :func:`edge.db.connection.checkpoint`)."""
        with self._lock:
            return checkpoint(self._conn)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def insert(self, event_type: str, object_label: str, confidence: float, camera_name: str,
               snapshot_path: str | None, created_at: float, method: str = "face",
               detector_score: float | None = None, uid: str | None = None, *,
               published: bool = False) -> int:
        """One row; ``uid`` (default a new UUID v4) is the id the event is known by outside.
        ``published``: the event already went out over MQTT (from memory, while the disk was
        full), so the outbox must not send it again."""
        with self._lock, transaction(self._conn):
            cur = self._conn.execute(
                "INSERT INTO events (event_type, object_label, confidence, snapshot_path, identification_method,"
                " camera_name, created_at, detector_score, event_uid, published_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN strftime('%Y-%m-%d %H:%M:%f', 'now') END)",
                (event_type, object_label, float(confidence), snapshot_path, method, camera_name,
                 db_text(created_at), None if detector_score is None else float(detector_score),
                 uid or str(uuid.uuid4()), 1 if published else 0))
            return inserted_id(cur)

    def list(self, limit: int = 50, camera: str | None = None, person: str | None = None,
             event_type: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        where: builtins.list[str] = []
        args: builtins.list[object] = []
        if camera is not None:
            where.append("camera_name = ?")
            args.append(camera)
        if person is not None:
            where.append("object_label = ?")
            args.append(person)
        if event_type is not None:
            where.append("event_type = ?")
            args.append(event_type)
        sql = f"SELECT {', '.join(COLUMNS)} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [dict(row) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def delete_older_than(self, cutoff: float) -> builtins.list[str]:
        """Delete events created before ``cutoff`` (unix time); returns their snapshot paths."""
        stamp = db_text(cutoff)
        with self._lock, transaction(self._conn):
            paths = [r[0] for r in self._conn.execute(
                "SELECT snapshot_path FROM events WHERE created_at < ? AND snapshot_path IS NOT NULL", (stamp,))]
            self._conn.execute("DELETE FROM events WHERE created_at < ?", (stamp,))
        return paths

    def oldest_snapshots(self, limit: int) -> builtins.list[tuple[int, str]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, snapshot_path FROM events WHERE snapshot_path IS NOT NULL ORDER BY id LIMIT ?",
                (int(limit),)).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def clear_snapshots(self, ids: builtins.list[int]) -> None:
        if not ids:
            return
        with self._lock, transaction(self._conn):
            self._conn.executemany("UPDATE events SET snapshot_path = NULL WHERE id = ?", [(i,) for i in ids])

    def snapshot_paths(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT snapshot_path FROM events WHERE snapshot_path IS NOT NULL")}


def open_event_store(db_path: str | os.PathLike[str], busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> EventStore:
    try:
        return EventStore(db_path, busy_timeout_ms)
    except sqlite3.Error as exc:
        raise sqlite3.OperationalError(f"{db_path}: cannot open the events database: {exc}") from exc
