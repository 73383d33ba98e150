"""Read-only queries behind the status page: events with filters, enrolled people, a probe.

Every function opens its own read-only connection (the web server's threads never share
one) and closes it before returning.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.db import faces
from edge.db.connection import connect
from edge.db.events import COLUMNS as EVENT_COLUMNS
from edge.db.events import event_fields
from edge.timestamps import iso_from_db

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
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    with _reader(db_path) as conn:
        rows = conn.execute(sql, params).fetchall()
    return [_listed(row) for row in rows]


def _listed(row: sqlite3.Row) -> dict[str, Any]:
    e = event_fields(dict(row))
    # The status page's "person" column shows the label as stored, "unknown" included.
    return {"id": e["id"], "type": e["type"], "person": e["label"], "confidence": e["confidence"],
            "camera": e["camera"], "method": e["method"], "timestamp": e["timestamp"],
            "snapshot_path": e["snapshot_path"]}


def get_event(db_path: Path, event_id: int) -> dict[str, Any] | None:
    """One event in :func:`list_events`'s shape, or None."""
    with _reader(db_path) as conn:
        row = conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id = ?", (int(event_id),)).fetchone()
    return _listed(row) if row is not None else None


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
        people = faces.list_people(conn, order="name_nocase")
    return [{"id": p["id"], "name": p["name"], "created_at": iso_from_db(p["created_at"]),
             "embeddings": p["embeddings"], "images": [path for path in p["images"] if path]} for p in people]


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
