"""Technician sessions of the status page, kept server-side in ``<data_dir>/web-sessions.db``.

The browser holds only a random token; this file holds its SHA-256, so a copy of the file
(or of a backup) never yields a working cookie. A session ends at its absolute expiry,
after ``idle_s`` without a request, at logout, or when it is revoked (a password change,
``facepro web logout-all``).

Sessions live in a file of their own, not in the event database: backups carry the event
database, and a restored archive must neither revive a session that was logged out nor
plant one. The one table is created when the file is opened (``user_version`` 1).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.db.connection import connect, transaction

FILE_NAME = "web-sessions.db"
MAX_SESSIONS = 200  # the oldest are dropped beyond this: a login loop cannot grow the file
TOUCH_EVERY_S = 30.0  # last_seen_at is written at most this often per session

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    client TEXT,
    user_agent TEXT
)
"""


@dataclass(frozen=True)
class SessionRow:
    id: int
    created_at: float
    last_seen_at: float
    expires_at: float
    client: str | None
    user_agent: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "last_seen_at": self.last_seen_at,
                "expires_at": self.expires_at, "client": self.client, "user_agent": self.user_agent}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sessions_file(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / FILE_NAME


class SessionStore:
    """Opens a connection per call: the web server's threads and the CLI share nothing."""

    def __init__(self, path: str | os.PathLike[str], *, max_age_s: float = 43200.0, idle_s: float = 1800.0,
                 clock: Any = time.time) -> None:
        self.path = Path(path)
        self.max_age_s = float(max_age_s)
        self.idle_s = float(idle_s)
        self.clock = clock

    def _conn(self) -> sqlite3.Connection:
        conn = connect(self.path, busy_timeout_ms=2000)
        if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
            conn.execute(SCHEMA)
            conn.execute("PRAGMA user_version = 1")
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass
        return conn

    def create(self, client: str | None = None, user_agent: str | None = None) -> tuple[str, int]:
        """A new session: returns (token for the cookie, its id for listing/revoking)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        conn = self._conn()
        try:
            with transaction(conn):
                self._purge(conn, now)
                cur = conn.execute(
                    "INSERT INTO web_sessions (token_hash, created_at, last_seen_at, expires_at, client, user_agent)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (_hash(token), now, now, now + self.max_age_s, (client or "")[:64] or None,
                     (user_agent or "")[:200] or None))
                session_id = int(cur.lastrowid or 0)
                conn.execute("DELETE FROM web_sessions WHERE id NOT IN"
                             " (SELECT id FROM web_sessions ORDER BY id DESC LIMIT ?)", (MAX_SESSIONS,))
        finally:
            conn.close()
        return token, session_id

    def check(self, token: str | None) -> int | None:
        """The id of the live session holding ``token`` (its idle clock restarts), else None."""
        if not token or not self.path.exists():
            return None
        now = self.clock()
        conn = self._conn()
        try:
            row = conn.execute("SELECT id, last_seen_at, expires_at FROM web_sessions WHERE token_hash = ?",
                               (_hash(token),)).fetchone()
            if row is None:
                return None
            if now >= row["expires_at"] or now - row["last_seen_at"] >= self.idle_s:
                with transaction(conn):
                    conn.execute("DELETE FROM web_sessions WHERE id = ?", (row["id"],))
                return None
            if now - row["last_seen_at"] >= TOUCH_EVERY_S:
                try:
                    with transaction(conn):
                        conn.execute("UPDATE web_sessions SET last_seen_at = ? WHERE id = ?", (now, row["id"]))
                except sqlite3.OperationalError:
                    pass  # a full disk must not log the technician out; the idle clock just does not restart
            return int(row["id"])
        finally:
            conn.close()

    def revoke_token(self, token: str | None) -> bool:
        if not token or not self.path.exists():
            return False
        return self._delete("token_hash = ?", (_hash(token),)) > 0

    def revoke(self, session_id: int) -> bool:
        return self._delete("id = ?", (int(session_id),)) > 0

    def revoke_all(self, except_id: int | None = None) -> int:
        """End every session (but ``except_id``); returns how many ended."""
        if not self.path.exists():
            return 0
        return self._delete("id != ?", (-1 if except_id is None else int(except_id),))

    def _delete(self, where: str, args: tuple[Any, ...]) -> int:
        conn = self._conn()
        try:
            with transaction(conn):
                return conn.execute(f"DELETE FROM web_sessions WHERE {where}", args).rowcount
        finally:
            conn.close()

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        conn.execute("DELETE FROM web_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                     (now, now - self.idle_s))

    def live(self) -> list[SessionRow]:
        """Live sessions, newest first (never their tokens: only their hash is stored)."""
        if not self.path.exists():
            return []
        now = self.clock()
        conn = self._conn()
        try:
            with transaction(conn):
                self._purge(conn, now)
            rows = conn.execute("SELECT id, created_at, last_seen_at, expires_at, client, user_agent"
                                " FROM web_sessions ORDER BY id DESC").fetchall()
        finally:
            conn.close()
        return [SessionRow(int(r["id"]), r["created_at"], r["last_seen_at"], r["expires_at"], r["client"],
                           r["user_agent"]) for r in rows]
