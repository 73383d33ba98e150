"""Machine API tokens: create, list, revoke, and check a presented token.

A token is ``fpe_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256
is stored (a slow password hash buys nothing for a value with 256 bits of entropy); the
token is returned once, to be printed by ``facepro web token create``, and never logged.
A check hashes the presented value and compares it with every stored hash in constant
time, without stopping at a match, so the time taken says nothing about which rows exist.

Nothing here imports Flask, so the CLI can manage tokens without loading the web app.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets as pysecrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from edge.db import api_tokens as store
from edge.db.connection import connect
from edge.errors import BadInput
from edge.timestamps import db_text, from_db, iso_from_db

PREFIX = "fpe_"
SCOPES = ("read", "admin")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What a presented token may look like before it is hashed: bounds the work per request.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
GENERATED_RE = re.compile(PREFIX + r"[A-Za-z0-9_-]{43}")
MAX_ACTIVE = 100
MAX_EXPIRES_DAYS = 3650
TOUCH_EVERY_S = 60.0


class TokenError(BadInput, ValueError):
    """A token request that cannot be done (bad name, scope, expiry; unknown name)."""


@dataclass(frozen=True)
class TokenInfo:
    """A token that passed the check: what it may do, and the name it is logged by."""

    id: int
    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        return self.scope == "admin" or scope == "read"


@dataclass(frozen=True)
class Check:
    """The outcome of a check: ``token`` when it passed, else ``reason`` (``invalid``,
    ``revoked`` or ``expired``) and, for a known token, its ``name``."""

    token: TokenInfo | None
    reason: str = "ok"
    name: str | None = None


def new_token() -> str:
    return PREFIX + pysecrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise TokenError(f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
    return name


def _state(row: dict[str, Any], now: datetime) -> str:
    if row.get("revoked_at"):
        return "revoked"
    expires = from_db(row.get("expires_at"))
    if expires is not None and expires <= now:
        return "expired"
    return "active"


def create(db_path: Path, name: str, scope: str = "read", expires_days: int | None = None,
           busy_timeout_ms: int = 5000, token: str | None = None) -> tuple[str, dict[str, Any]]:
    """A new token named ``name``: returns (the token, its listing entry). The token is not kept.

    ``token`` gives the value instead of a random one: a token another device made, so one
    Prometheus credentials file serves a fleet. It must have the shape this module makes."""
    check_name(name)
    if token is not None and not GENERATED_RE.fullmatch(token):
        raise TokenError(f"the given token does not look like one facepro made ({PREFIX} and 43 URL-safe "
                         "characters); make one with: facepro web token create NAME")
    if scope not in SCOPES:
        raise TokenError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise TokenError(f"--expires {expires_days}: expected 1..{MAX_EXPIRES_DAYS} days")
    now = datetime.now(timezone.utc)
    expires_at = db_text(now + timedelta(days=expires_days)) if expires_days is not None else None
    token = token or new_token()
    conn = connect(db_path, busy_timeout_ms=busy_timeout_ms)
    try:
        if store.count_active(conn) >= MAX_ACTIVE:
            raise TokenError(f"already {MAX_ACTIVE} tokens that are not revoked; revoke one first "
                             "(facepro web token list)")
        try:
            token_id = store.insert(conn, name, scope, token_sha256(token), db_text(now), expires_at)
        except store.DuplicateName:
            raise TokenError(f"a token named {name!r} exists; revoke it first or choose another name") from None
        except sqlite3.IntegrityError:  # the given value is another token's (never for a random one)
            raise TokenError("this token is already in use on this device under another name") from None
    finally:
        conn.close()
    entry = {"id": token_id, "name": name, "scope": scope, "state": "active", "created_at": iso_from_db(db_text(now)),
             "expires_at": iso_from_db(expires_at), "last_used_at": None, "revoked_at": None}
    return token, entry


def list_tokens(db_path: Path, busy_timeout_ms: int = 5000) -> list[dict[str, Any]]:
    """Every token with its state (active, expired, revoked); never a hash or a value."""
    now = datetime.now(timezone.utc)
    conn = connect(db_path, busy_timeout_ms=busy_timeout_ms)
    try:
        rows = store.list_tokens(conn)
    finally:
        conn.close()
    return [dict({k: (iso_from_db(v) if k.endswith("_at") else v) for k, v in row.items()}, state=_state(row, now))
            for row in rows]


def revoke(db_path: Path, name: str, busy_timeout_ms: int = 5000) -> None:
    """Revoke the active token ``name``: every later request with it is refused at once."""
    check_name(name)
    conn = connect(db_path, busy_timeout_ms=busy_timeout_ms)
    try:
        if not store.revoke(conn, name, db_text()):
            raise TokenError(f"no active token named {name!r} (see: facepro web token list)")
    finally:
        conn.close()


def check_token(db_path: Path, presented: str, now: datetime | None = None) -> Check:
    """Check a presented token against the stored hashes (constant time per row, every row)."""
    now = now or datetime.now(timezone.utc)
    if not TOKEN_RE.fullmatch(presented or ""):
        return Check(None, "invalid")
    digest = token_sha256(presented).encode("ascii")
    conn = connect(db_path, readonly=True, busy_timeout_ms=2000)
    try:
        rows = store.rows_for_check(conn)
    finally:
        conn.close()
    found: sqlite3.Row | None = None
    for row in rows:
        if hmac.compare_digest(digest, str(row["token_sha256"]).encode("ascii")):
            found = row
    if found is None:
        return Check(None, "invalid")
    state = _state(dict(found), now)
    if state != "active":
        return Check(None, state, found["name"])
    return Check(TokenInfo(int(found["id"]), str(found["name"]), str(found["scope"])))


class UsageRecorder:
    """Writes a token's ``last_used_at`` at most once per ``every_s`` (not on every request)."""

    def __init__(self, db_path: Path, every_s: float = TOUCH_EVERY_S) -> None:
        self.db_path = db_path
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}

    def used(self, token: TokenInfo) -> bool:
        """Record a use; True when this use was written (the first in its interval)."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(token.id)
            if last is not None and now - last < self.every_s:
                return False
            self._last[token.id] = now
        conn = connect(self.db_path, busy_timeout_ms=2000)
        try:
            store.touch(conn, token.id, db_text())
        finally:
            conn.close()
        return True
