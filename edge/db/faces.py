"""Store for enrolled people (``users``) and their face embeddings (``face_encodings``).

Embeddings are float32 little-endian BLOBs, L2-normalised, tagged with their dimension
and the backend (embedder) that produced them. ``image_path`` is the aligned crop's
path relative to ``<data_dir>/faces``.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.db.connection import inserted_id, transaction

EMBEDDING_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class NewEncoding:
    embedding: np.ndarray  # (dim,) float32
    image_path: str | None  # relative to <data_dir>/faces


def embedding_to_blob(embedding: np.ndarray) -> bytes:
    return np.ascontiguousarray(embedding, dtype=EMBEDDING_DTYPE).reshape(-1).tobytes()


def blob_to_embedding(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=EMBEDDING_DTYPE)


def find_user(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    return conn.execute("SELECT id, name, created_at FROM users WHERE name = ?", (name,)).fetchone()


def create_user(conn: sqlite3.Connection, name: str) -> int | None:
    """Add ``name`` with no encodings yet; returns the id, or None when someone has that name."""
    with transaction(conn):
        if find_user(conn, name) is not None:
            return None
        return inserted_id(conn.execute("INSERT INTO users (name) VALUES (?)", (name,)))


def add_encodings(conn: sqlite3.Connection, name: str, encodings: Iterable[NewEncoding],
                  backend: str) -> tuple[int, list[int]]:
    """Insert ``name`` (if new) and its encodings in the CURRENT transaction; returns
    (user id, encoding ids). The caller owns the transaction (see :func:`enroll_rows`)."""
    row = find_user(conn, name)
    if row is None:
        user_id = inserted_id(conn.execute("INSERT INTO users (name) VALUES (?)", (name,)))
    else:
        user_id = int(row["id"])
    ids: list[int] = []
    for enc in encodings:
        vector = np.asarray(enc.embedding, dtype=np.float32).reshape(-1)
        cur = conn.execute(
            "INSERT INTO face_encodings (user_id, encoding, embedding_dim, backend, image_path)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, embedding_to_blob(vector), int(vector.size), backend, enc.image_path),
        )
        ids.append(inserted_id(cur))
    return user_id, ids


def enroll_rows(conn: sqlite3.Connection, name: str, encodings: list[NewEncoding], backend: str) -> list[int]:
    """Add ``encodings`` for ``name`` in one transaction; returns the new encoding ids."""
    with transaction(conn):
        _, ids = add_encodings(conn, name, encodings, backend)
    return ids


def people_names(conn: sqlite3.Connection) -> list[str]:
    """Every enrolled person's name, sorted (one cheap query; MQTT discovery polls it)."""
    return [str(row[0]) for row in conn.execute("SELECT name FROM users ORDER BY name")]


_PEOPLE_ORDER = {"id": "u.id", "name": "u.name", "name_nocase": "u.name COLLATE NOCASE"}


def list_people(conn: sqlite3.Connection, order: str = "name") -> list[dict[str, Any]]:
    """Each enrolled person: id, name, created_at (as stored), embeddings (count), dims,
    backends, last_enrolled_at, images (crop paths relative to faces/, oldest first).

    ``order`` is ``name``, ``name_nocase`` or ``id``. Works on any schema version (columns
    a migration adds read as absent), so read-only callers need not migrate first.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(face_encodings)")}

    def column(name: str) -> str:
        return f"f.{name}" if name in columns else "NULL"

    rows = conn.execute(
        "SELECT u.id, u.name, u.created_at, COUNT(f.id) AS embeddings,"
        f" GROUP_CONCAT(DISTINCT {column('embedding_dim')}) AS dims,"
        f" GROUP_CONCAT(DISTINCT {column('backend')}) AS backends,"
        " MAX(f.created_at) AS last_enrolled_at"
        " FROM users u LEFT JOIN face_encodings f ON f.user_id = u.id"
        f" GROUP BY u.id ORDER BY {_PEOPLE_ORDER[order]}"
    ).fetchall()
    images: dict[int, list[str]] = {}
    if "image_path" in columns:
        for row in conn.execute(
                "SELECT user_id, image_path FROM face_encodings WHERE image_path IS NOT NULL ORDER BY id"):
            images.setdefault(int(row["user_id"]), []).append(row["image_path"])
    return [
        {
            "id": int(row["id"]),
            "name": row["name"],
            "created_at": row["created_at"],
            "embeddings": int(row["embeddings"]),
            "dims": sorted(int(d) for d in str(row["dims"]).split(",")) if row["dims"] else [],
            "backends": sorted(str(row["backends"]).split(",")) if row["backends"] else [],
            "last_enrolled_at": row["last_enrolled_at"],
            "images": images.get(int(row["id"]), []),
        }
        for row in rows
    ]


def remove_user(conn: sqlite3.Connection, name: str) -> list[str | None]:
    """Delete ``name`` and its encodings (one transaction); returns each removed
    encoding's image path (None where it had none). KeyError when nobody has that name."""
    with transaction(conn):
        row = find_user(conn, name)
        if row is None:
            raise KeyError(name)
        images = [r["image_path"] for r in conn.execute(
            "SELECT image_path FROM face_encodings WHERE user_id = ?", (row["id"],))]
        conn.execute("DELETE FROM face_encodings WHERE user_id = ?", (row["id"],))
        conn.execute("DELETE FROM users WHERE id = ?", (row["id"],))
    return images


def load_encodings(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """All encodings with their person's name, oldest first."""
    return conn.execute(
        "SELECT f.id, f.user_id, u.name, f.encoding, f.embedding_dim, f.backend, f.image_path"
        " FROM face_encodings f JOIN users u ON u.id = f.user_id ORDER BY f.id"
    ).fetchall()


def encodings_signature(conn: sqlite3.Connection) -> tuple[int, int]:
    """(row count, max id) of face_encodings: changes on every enrolment and removal
    (ids are AUTOINCREMENT, never reused), and costs one index lookup."""
    row = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM face_encodings").fetchone()
    return int(row[0]), int(row[1])
