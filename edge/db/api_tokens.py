"""The ``api_tokens`` table: machine API tokens, kept only as the SHA-256 of the token.

Timestamps are SQLite UTC text (``YYYY-MM-DD HH:MM:SS``). A revoked token keeps its row;
at most one token per name is not revoked (a partial unique index).
"""
from __future__ import annotations

import sqlite3
from typing import Any

from edge.db.connection import inserted_id, transaction

_PUBLIC = ("id", "name", "scope", "created_at", "expires_at", "last_used_at", "revoked_at")


class DuplicateName(ValueError):
    """A token of that name exists and is not revoked."""


def has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_tokens'").fetchone() is not None


def count_active(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL").fetchone()[0])


def insert(conn: sqlite3.Connection, name: str, scope: str, token_sha256: str, created_at: str,
           expires_at: str | None) -> int:
    """Add a token; DuplicateName when ``name`` is taken by a token that is not revoked."""
    try:
        with transaction(conn):
            cur = conn.execute(
                "INSERT INTO api_tokens (name, scope, token_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (name, scope, token_sha256, created_at, expires_at))
            return inserted_id(cur)
    except sqlite3.IntegrityError as exc:
        if "token_sha256" in str(exc):
            raise
        raise DuplicateName(name) from exc


def list_tokens(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every token (revoked ones too), oldest first, without its hash."""
    rows = conn.execute(f"SELECT {', '.join(_PUBLIC)} FROM api_tokens ORDER BY id").fetchall()
    return [dict(row) for row in rows]


def revoke(conn: sqlite3.Connection, name: str, revoked_at: str) -> bool:
    """Revoke the token named ``name``; False when no token of that name is active."""
    with transaction(conn):
        cur = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                           (revoked_at, name))
    return cur.rowcount > 0


def rows_for_check(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """What a token check compares against: id, name, scope, hash, expiry and revocation of every row."""
    return conn.execute(
        "SELECT id, name, scope, token_sha256, expires_at, revoked_at FROM api_tokens ORDER BY id").fetchall()


def touch(conn: sqlite3.Connection, token_id: int, used_at: str) -> None:
    with transaction(conn):
        conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (used_at, int(token_id)))
