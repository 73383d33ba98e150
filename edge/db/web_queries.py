"""Read-only queries behind the status page: events with filters, enrolled people, a probe.

Every function opens its own read-only connection (the web server's threads never share
one) and closes it before returning.
"""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from edge.db.connection import connect

MAX_EVENTS = 500


@contextlib.contextmanager
def _reader(db_path: Path) -> Iterator[sqlite3.Connection]:
    if not Path(db_path).is_file():
        raise sqlite3.OperationalError(f"database {db_path} does not exist")
    conn = connect(db_path, readonly=True, busy_timeout_ms=2000)
    try:
        yield conn
    finally:
        conn.close()


def iso_utc(value: str | None) -> str | None:
    """SQLite's UTC 'YYYY-MM-DD HH:MM:SS[.fff]' as ISO 8601 with 'Z'."""
    if not value:
        return None
    text = str(value).replace(" ", "T")
    if text.endswith("Z") or "+" in text[10:]:
        return text
    return text + "Z"


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}


def probe(db_path: Path) -> tuple[bool, str]:
    """(True, 'schema version N') when the database answers a query, else (False, why)."""
    try:
        with _reader(db_path) as conn:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").fetchone()
            return True, f"schema version {row['v']}"
    except sqlite3.Error as exc:
        return False, f"database {db_path}: {exc}"


def list_events(db_path: Path, *, camera: str | None = None, person: str | None = None,
                event_type: str | None = None, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    """Latest events first, optionally filtered; ``before_id`` pages further back."""
    limit = max(1, min(int(limit), MAX_EVENTS))
    where: list[str] = []
    params: list[Any] = []
    if camera:
        where.append("camera_name = ?")
        params.append(camera)
    if person:
        where.append("object_label = ?")
        params.append(person)
    if event_type:
        where.append("event_type = ?")
        params.append(event_type)
    if before_id is not None:
        where.append("id < ?")
        params.append(int(before_id))
    sql = ("SELECT id, event_type, object_label, confidence, snapshot_path, identification_method, "
           "camera_name, created_at FROM events")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    with _reader(db_path) as conn:
        rows = conn.execute(sql, params).fetchall()
    return [
        {
            "id": row["id"],
            "type": row["event_type"],
            "person": row["object_label"],
            "confidence": row["confidence"],
            "camera": row["camera_name"],
            "method": row["identification_method"],
            "timestamp": iso_utc(row["created_at"]),
            "snapshot_path": row["snapshot_path"],
        }
        for row in rows
    ]


def event_filter_choices(db_path: Path) -> dict[str, list[str]]:
    """The distinct cameras, people and event types present, for the filter menus."""
    with _reader(db_path) as conn:
        def distinct(column: str) -> list[str]:
            sql = f"SELECT DISTINCT {column} AS v FROM events WHERE {column} IS NOT NULL ORDER BY v LIMIT 200"
            return [row["v"] for row in conn.execute(sql)]
        return {"cameras": distinct("camera_name"), "people": distinct("object_label"),
                "types": distinct("event_type")}


def list_people(db_path: Path) -> list[dict[str, Any]]:
    """Enrolled users with the face crops their embeddings came from (paths under faces/)."""
    with _reader(db_path) as conn:
        has_images = "image_path" in _columns(conn, "face_encodings")
        users = conn.execute("SELECT id, name, created_at FROM users ORDER BY name COLLATE NOCASE").fetchall()
        image_sql = ("SELECT user_id, image_path FROM face_encodings ORDER BY id" if has_images
                     else "SELECT user_id, NULL AS image_path FROM face_encodings ORDER BY id")
        faces: dict[int, list[str | None]] = {}
        for row in conn.execute(image_sql):
            faces.setdefault(row["user_id"], []).append(row["image_path"])
    return [
        {
            "id": user["id"],
            "name": user["name"],
            "created_at": iso_utc(user["created_at"]),
            "embeddings": len(faces.get(user["id"], [])),
            "images": [path for path in faces.get(user["id"], []) if path],
        }
        for user in users
    ]


def get_person(db_path: Path, user_id: int) -> dict[str, Any] | None:
    with _reader(db_path) as conn:
        row = conn.execute("SELECT id, name FROM users WHERE id = ?", (int(user_id),)).fetchone()
    return {"id": row["id"], "name": row["name"]} if row else None


def archive_includes(db_path: Path, archive: str) -> list[str] | None:
    """The parts (db, faces, settings) a backup archive holds, from the backup log (its
    creation, or a verification such as an import); None when the log does not know it."""
    try:
        with _reader(db_path) as conn:
            row = conn.execute(
                "SELECT includes FROM backup_runs WHERE archive = ? AND result = 'ok' AND includes IS NOT NULL"
                " AND operation IN ('create', 'verify', 'import') ORDER BY id DESC LIMIT 1", (archive,)).fetchone()
    except sqlite3.Error:
        return None
    return [part for part in row["includes"].split(",") if part] if row else None
