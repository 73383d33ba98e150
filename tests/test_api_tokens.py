"""``facepro web token create|list|revoke`` and the token store: the token is printed once and
only its hash is kept; bad input is refused with exit 2; the failure counter stays bounded."""
from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from edge.config import load_settings
from edge.db.migrate import migrate_database
from edge.web import tokens
from edge.web.ratelimit import MAX_KEYS, SlidingWindow
from tests.support.cli import call_main, run_cli

TOKEN = re.compile(r"fpe_[A-Za-z0-9_-]{43}")


def db_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def test_create_prints_the_token_once_and_keeps_only_its_hash(write_settings: Any, data_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    settings = write_settings()
    run = run_cli(settings, "web", "token", "create", "prometheus", "--expires", "30")
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert TOKEN.fullmatch(token) and run.stdout == token + "\n"  # the token alone: `> file` keeps it
    assert "read token 'prometheus'" in run.stderr and "shown only this once" in run.stderr
    assert token not in run.stderr
    db_path = data_dir / "facepro.db"
    stored = db_bytes(db_path)
    assert token.encode() not in stored and token[4:].encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored

    assert call_main(settings, "web", "token", "list") == 0
    out, err = capsys.readouterr()
    assert token not in out + err
    line = next(ln for ln in out.splitlines() if ln.startswith("prometheus"))
    assert line.split()[1:3] == ["read", "active"]
    assert call_main(settings, "web", "token", "list", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["prometheus"]
    assert set(entries[0]) == {"id", "name", "scope", "state", "created_at", "expires_at", "last_used_at",
                               "revoked_at"}
    expires = datetime.fromisoformat(entries[0]["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=29, hours=23) < expires - datetime.now(timezone.utc) <= timedelta(days=30)
    assert tokens.check_token(db_path, token).token == tokens.TokenInfo(entries[0]["id"], "prometheus", "read")


def test_revoke_and_reuse_a_name(write_settings: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = write_settings()
    assert call_main(settings, "web", "token", "create", "ci", "--scope", "admin") == 0
    first = capsys.readouterr().out.strip()
    assert call_main(settings, "web", "token", "create", "ci") == 2
    assert "a token named 'ci' exists" in capsys.readouterr().err
    assert call_main(settings, "web", "token", "revoke", "ci") == 0
    assert call_main(settings, "web", "token", "revoke", "ci") == 2
    assert "no active token named 'ci'" in capsys.readouterr().err
    assert call_main(settings, "web", "token", "create", "ci") == 0
    second = capsys.readouterr().out.strip()
    db_path = data_dir / "facepro.db"
    assert tokens.check_token(db_path, first).reason == "revoked"
    assert tokens.check_token(db_path, second).token is not None
    assert [(t["name"], t["state"]) for t in tokens.list_tokens(db_path)] == [("ci", "revoked"), ("ci", "active")]


@pytest.mark.parametrize("args,message", [
    (["create", "two words"], "token name 'two words'"),
    (["create"], "the following arguments are required: NAME"),
    (["create", "a" * 65], "1-64 letters"),
    (["create", "ok", "--scope", "root"], "invalid choice: 'root'"),
    (["create", "ok", "--expires", "soon"], "expected a whole number of days"),
    (["create", "ok", "--expires", "0"], "--expires 0: expected 1..3650"),
    (["create", "ok", "--expires", "99999"], "--expires 99999"),
    (["revoke", "nobody"], "no active token named 'nobody'"),
])
def test_bad_input_exits_2_and_creates_nothing(write_settings: Any, data_dir: Path, args: list[str],
                                                message: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = call_main(write_settings(), "web", "token", *args)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and message in err, err
    assert out == ""
    if (data_dir / "facepro.db").exists():
        assert tokens.list_tokens(data_dir / "facepro.db") == []


def test_check_tells_unknown_revoked_and_expired_apart(tmp_path: Path, write_settings: Any) -> None:
    settings = load_settings(write_settings())
    migrate_database(settings)
    db_path = settings.db_path
    token, entry = tokens.create(db_path, "temp", "admin", expires_days=1)
    assert tokens.check_token(db_path, token).token is not None
    later = datetime.now(timezone.utc) + timedelta(days=1, minutes=1)
    assert tokens.check_token(db_path, token, now=later) == tokens.Check(None, "expired", "temp")
    for presented in ("", "fpe_", token + "x", token.upper(), "fpe_" + "a" * 43, token[:-1], "x" * 129):
        assert tokens.check_token(db_path, presented) == tokens.Check(None, "invalid"), presented
    tokens.revoke(db_path, "temp")
    assert tokens.check_token(db_path, token) == tokens.Check(None, "revoked", "temp")
    assert tokens.TokenInfo(1, "r", "read").allows("read") and not tokens.TokenInfo(1, "r", "read").allows("admin")
    assert tokens.TokenInfo(1, "a", "admin").allows("admin")


def test_active_tokens_are_capped(write_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "MAX_ACTIVE", 5)  # the rule, not the number, is under test
    settings = load_settings(write_settings())
    migrate_database(settings)
    for i in range(tokens.MAX_ACTIVE):
        tokens.create(settings.db_path, f"t{i}")
    with pytest.raises(tokens.TokenError, match="revoke one first"):
        tokens.create(settings.db_path, "one-more")
    tokens.revoke(settings.db_path, "t0")
    tokens.create(settings.db_path, "one-more")


def test_the_schema_refuses_what_the_code_never_writes(write_settings: Any) -> None:
    settings = load_settings(write_settings())
    migrate_database(settings)
    conn = sqlite3.connect(settings.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO api_tokens (name, scope, token_sha256) VALUES ('x', 'root', 'h')")
        conn.execute("INSERT INTO api_tokens (name, scope, token_sha256) VALUES ('x', 'read', 'h1')")
        with pytest.raises(sqlite3.IntegrityError):  # two active tokens of one name
            conn.execute("INSERT INTO api_tokens (name, scope, token_sha256) VALUES ('x', 'read', 'h2')")
    finally:
        conn.close()


def test_sliding_window_counts_forgets_and_stays_bounded() -> None:
    window = SlidingWindow(3, 10)
    assert [window.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert window.blocked("a", now=5) and window.retry_after("a", now=5) == 5
    assert not window.blocked("a", now=10.5) and window.allow("a", now=10.5)
    assert not window.blocked("b", now=5)
    for i in range(MAX_KEYS + 50):
        window.record(f"client-{i}", now=100 + i * 0.001)
    assert len(window._hits) <= MAX_KEYS
    with pytest.raises(ValueError):
        SlidingWindow(0, 1)


def test_create_from_stdin_gives_a_fleet_one_token(write_settings: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def create(settings: Path, name: str, given: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(given + "\n"))
        code = call_main(settings, "web", "token", "create", name, "--stdin")
        out, err = capsys.readouterr()
        return code, out, err

    assert call_main(write_settings(name="first.json"), "web", "token", "create", "prometheus") == 0
    token = capsys.readouterr().out.strip()
    other_dir = tmp_path / "other"
    other = write_settings({"paths": {"data_dir": str(other_dir)}}, name="other.json")
    code, out, err = create(other, "prometheus", token)
    assert code == 0 and out == "" and token not in err, err
    assert tokens.check_token(other_dir / "facepro.db", token).token is not None
    code, out, err = create(other, "again", token)
    assert code == 2 and "already in use on this device" in err
    for bad in ("", "secret-value", "fpe_short", token + "x", "fpe_" + "!" * 43):
        code, out, err = create(other, "weak", bad)
        assert code == 2 and out == "" and (not bad or bad not in err), err
    assert [t["name"] for t in tokens.list_tokens(other_dir / "facepro.db")] == ["prometheus"]
