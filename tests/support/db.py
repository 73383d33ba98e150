"""Real SQLite files for tests: a migrated database, event rows written and read back."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.db import connect
from edge.db.migrator import Migrator


def migrated_db(path: Path) -> Path:
    """A database at ``path`` with every migration applied."""
    with Migrator(path) as migrator:
        migrator.migrate()
    return path


def insert_event(db_path: Path, person: str | None = "alice", camera: str = "door", confidence: float = 0.87,
                 created_at: str | None = None, snapshot: str | None = "2026/11/26/ev.jpg") -> int:
    """One row in ``events`` (recognised when ``person`` is given, else unknown); returns its id."""
    conn = connect(db_path)
    try:
        kind = "face_recognized" if person else "face_unknown"
        if created_at is None:
            cur = conn.execute(
                "INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name)"
                " VALUES (?, ?, ?, ?, ?)", (kind, person, confidence, snapshot, camera))
        else:
            cur = conn.execute(
                "INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (kind, person, confidence, snapshot, camera, created_at))
        assert cur.lastrowid is not None
        return cur.lastrowid
    finally:
        conn.close()


def event_rows(db_path: Path) -> list[dict[str, Any]]:
    """Every row of ``events`` in id order, as dicts."""
    conn = connect(db_path)
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY id")]
    finally:
        conn.close()


def event_uids(db_path: Path) -> dict[int, str]:
    """Row id -> the event's published id (``event_uid``)."""
    return {row["id"]: row["event_uid"] for row in event_rows(db_path)}


def add_person(db_path: Path, name: str) -> None:
    """An enrolled person without embeddings (enough for what MQTT discovery reads)."""
    conn = connect(db_path)
    try:
        conn.execute("INSERT OR IGNORE INTO users (name) VALUES (?)", (name,))
    finally:
        conn.close()
