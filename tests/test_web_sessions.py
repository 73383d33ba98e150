"""Sessions and secrets on the status page (issue 13, item 4), through Flask's test client
over a real migrated database and the real sessions file; the CLI runs as a subprocess.

A copied cookie stops working at logout, sessions end when idle and at their absolute age,
they are listed and revoked by ``facepro web sessions|logout-all`` and a new password; no
answer confirms a guess at a masked secret; ``next`` stays on this site; the login limit holds
for the account across addresses; weak passwords are refused; ``web.secure_cookies``.
"""
from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edge.web import auth
from tests.conftest import FACEPRO, subprocess_env
from tests.support.web import csrf_from, login
from tests.test_web_app import MQTT_SECRET, PASSWORD, make_web

COOKIE = "facepro_session"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def web(tmp_path: Path, write_settings: Any, data_dir: Path) -> SimpleNamespace:
    return make_web(tmp_path, write_settings, data_dir)


def copy_cookie(source: Any, app: Any) -> Any:
    """A second client holding a copy of ``source``'s session cookie (a stolen cookie)."""
    cookie = source.get_cookie(COOKIE)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value, domain=cookie.domain)
    return thief


def facepro(settings: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(FACEPRO + ["--config", str(settings), "web", *args], input=stdin, capture_output=True,
                          text=True, env=subprocess_env(), timeout=60)


# -- logout, lifetimes, revocation -----------------------------------------------------------

def test_logout_ends_the_session_for_every_copy_of_the_cookie(web: SimpleNamespace) -> None:
    token = login(web.client, PASSWORD)
    thief = copy_cookie(web.client, web.app)
    assert thief.get("/api/status").status_code == 200
    started = thief.post("/api/backups", json={"include": ["settings"]}, headers={"X-CSRF-Token": token})
    assert started.status_code == 202  # the copy works while the session lives

    assert web.client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert web.client.get("/api/status").status_code == 401
    # The copy made before the logout is dead too: reads and a backup start are refused.
    assert thief.get("/api/status").status_code == 401
    refused = thief.post("/api/backups", json={"include": ["settings"]}, headers={"X-CSRF-Token": token})
    assert refused.status_code == 401
    assert web.app.extensions["facepro_sessions"].live() == []


def test_sessions_end_when_idle_and_at_their_absolute_age(tmp_path: Path, write_settings: Any,
                                                          data_dir: Path) -> None:
    clock = Clock()
    built = make_web(tmp_path, write_settings, data_dir, web={"session_idle_s": 600, "session_max_age_s": 3600},
                     clock=clock)
    client = built.client

    login(client, PASSWORD)
    clock.now += 599
    assert client.get("/api/status").status_code == 200  # active: the idle clock restarts
    clock.now += 599
    assert client.get("/api/status").status_code == 200
    clock.now += 601
    assert client.get("/api/status").status_code == 401  # idle for over 600 s

    login(client, PASSWORD)
    for _ in range(6):  # busy all along, yet the absolute age ends it
        clock.now += 590
        assert client.get("/api/status").status_code == 200
    clock.now += 70  # 3610 s after login
    assert client.get("/api/status").status_code == 401


def test_cli_lists_and_ends_sessions_and_a_new_password_ends_them(web: SimpleNamespace) -> None:
    settings = web.ctx.settings.source
    first, second = web.client, web.app.test_client()
    login(first, PASSWORD)
    login(second, PASSWORD)
    tokens = []
    for client in (first, second):
        with client.session_transaction() as session:
            tokens.append(session["sid"])

    listed = facepro(settings, "sessions")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 2 and all("127.0.0.1" in row for row in rows)
    for token in tokens:  # never the secret, nor its stored hash
        assert token not in listed.stdout
        assert hashlib.sha256(token.encode()).hexdigest() not in listed.stdout
    assert web.app.extensions["facepro_sessions"].path.stat().st_mode & 0o077 == 0

    ended = facepro(settings, "logout-all")
    assert ended.returncode == 0 and "2 session(s) ended" in ended.stdout
    assert first.get("/api/status").status_code == 401 and second.get("/api/status").status_code == 401
    assert "no live session" in facepro(settings, "sessions").stdout

    login(first, PASSWORD)
    one = web.app.extensions["facepro_sessions"].live()[0].id
    missing = facepro(settings, "logout", str(one + 100))
    assert missing.returncode == 2 and f"no live session with id {one + 100}" in missing.stderr
    changed = facepro(settings, "set-password", "--stdin", stdin="a much better passphrase\n")
    assert changed.returncode == 0, changed.stderr
    assert "1 session(s) logged in with the old one ended" in changed.stdout
    assert first.get("/api/status").status_code == 401
    assert web.app.extensions["facepro_sessions"].live() == []


def test_a_restored_sessions_row_is_not_a_cookie(web: SimpleNamespace) -> None:
    """The sessions file holds hashes only: reading it (or a copy) gives no working cookie."""
    login(web.client, PASSWORD)
    import sqlite3

    path = web.app.extensions["facepro_sessions"].path
    stored = [row[0] for row in sqlite3.connect(path).execute("SELECT token_hash FROM web_sessions")]
    with web.client.session_transaction() as session:
        assert session["sid"] not in stored and len(stored) == 1
        session["sid"] = stored[0]  # present the stored value as the token
    assert web.client.get("/api/status").status_code == 401


# -- no oracle, local next -------------------------------------------------------------------

GUESS_PAGES = [
    "/login?next=/events%3Fperson%3D{}",
    "/api/history?window={}",
    "/api/events?limit={}",
]


@pytest.mark.parametrize("template", GUESS_PAGES)
def test_no_answer_tells_a_right_guess_of_a_secret_from_a_wrong_one(web: SimpleNamespace, template: str) -> None:
    """The MQTT password is registered as a secret; a guess echoed back must come back as sent."""
    wrong = "mqtt-s3cret-valuf"
    assert len(wrong) == len(MQTT_SECRET) and wrong != MQTT_SECRET
    web.client.get("/login")  # one session, one CSRF token for both pages
    login(web.client, PASSWORD)
    right_body = web.client.get(template.format(MQTT_SECRET)).get_data(as_text=True)
    wrong_body = web.client.get(template.format(wrong)).get_data(as_text=True)
    assert "***" not in right_body
    assert right_body.replace(MQTT_SECRET, "GUESS") == wrong_body.replace(wrong, "GUESS")


def _zip_without_manifest() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("notes.txt", "not a backup")
    return buffer.getvalue()


UPLOADS = [(b"not a zip at all", ".zip"), (b"PK\x03\x04" + b"\x00" * 64, ".zip"), (_zip_without_manifest(), ".zip"),
           (b"FPEN" + b"\x00" * 64, ".zip.enc"), (b"anything", ".txt")]


@pytest.mark.parametrize("content,suffix", UPLOADS, ids=["text", "bad-zip", "no-manifest", "bad-encrypted", "txt"])
def test_a_backup_import_named_after_a_secret_answers_like_any_other_name(web: SimpleNamespace, content: bytes,
                                                                          suffix: str) -> None:
    """The import's error once quoted the upload's temp path through the secret masker, so
    ``<MQTT password>.zip`` came back as ``.../***.zip``: a right guess told from a wrong one."""
    wrong = "mqtt-s3cret-valuf"
    token = login(web.client, PASSWORD)

    def upload(guess: str) -> str:
        response = web.client.post("/backups/import", data={"csrf_token": token,
                                                            "archive": (io.BytesIO(content), guess + suffix)},
                                   content_type="multipart/form-data", follow_redirects=True)
        return response.get_data(as_text=True).replace(guess, "GUESS")

    right_body, wrong_body = upload(MQTT_SECRET), upload(wrong)
    assert "***" not in right_body
    assert ("not imported" in right_body) != ("not a backup archive" in right_body)  # refused, one way or the other
    assert right_body == wrong_body
    assert web.ctx.backups.list("local") == []


def test_a_part_error_quoting_a_secret_is_masked_in_that_field(web: SimpleNamespace) -> None:
    def broken() -> list[dict[str, Any]]:
        raise RuntimeError(f"camera login failed with password {MQTT_SECRET}")

    web.ctx.pipeline.cameras_status = broken
    login(web.client, PASSWORD)
    status = web.client.get("/api/status").get_json()
    assert status["cameras"]["available"] is False
    assert status["cameras"]["error"] == "RuntimeError: camera login failed with password ***"
    assert MQTT_SECRET not in web.client.get("/").get_data(as_text=True)


BAD_NEXT = ["//evil.example/x", "/\\evil.example/x", "/\\/evil.example", "https://evil.example/",
            "javascript:alert(1)", "evil.example", "/events\r\nSet-Cookie: x=1", "/\x00",
            "/login", "/logout", "/" + "a" * 600]


@pytest.mark.parametrize("target", BAD_NEXT)
def test_next_is_a_local_path_or_nothing(web: SimpleNamespace, target: str) -> None:
    page = web.client.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert 'name="next" value=""' in page
    response = web.client.post("/login", data={"password": PASSWORD, "csrf_token": csrf_from(page), "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_local_next_is_kept(web: SimpleNamespace) -> None:
    page = web.client.get("/login", query_string={"next": "/events?camera=door"}).get_data(as_text=True)
    assert 'name="next" value="/events?camera=door"' in page
    response = web.client.post("/login", data={"password": PASSWORD, "csrf_token": csrf_from(page),
                                               "next": "/events?camera=door"})
    assert response.headers["Location"] == "/events?camera=door"


# -- rate limits, password strength, cookie flags --------------------------------------------

def test_guesses_from_many_addresses_meet_the_account_limit(web: SimpleNamespace) -> None:
    outcomes: list[int] = []
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        client = web.app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        token = csrf_from(client.get("/login").get_data(as_text=True))
        for attempt in range(5):
            outcomes.append(client.post("/login", data={"password": f"guess {attempt}", "csrf_token": token})
                            .status_code)
    assert outcomes.count(401) == 10, outcomes  # the account's limit: 10 per 5 minutes
    assert outcomes.count(429) == 10


def test_the_limiter_table_stays_bounded() -> None:
    limiter = auth.LoginRateLimiter(limit=5, window_s=60, max_keys=100)
    for i in range(5000):  # a flood of fresh addresses inside one window
        limiter.allow(f"2001:db8::{i:x}", now=1000.0 + i * 0.001)
    assert len(limiter) <= 101
    assert limiter.allow("2001:db8::1", now=2000.0)


@pytest.mark.parametrize("password,why", [
    ("Password123!", "too easy to guess"),
    ("qwertyuiop123", "too easy to guess"),
    ("aaaaaaaaaaaaaaaa", "too easy to guess"),
    ("facepro12345", "too easy to guess"),
    ("technician1234", "too easy to guess"),
    ("short1!", "shorter than 10 characters"),
    ("   ", "the password is empty"),
])
def test_weak_passwords_are_refused(data_dir: Path, password: str, why: str) -> None:
    with pytest.raises(auth.PasswordError, match=why):
        auth.set_password(data_dir, password)
    assert not auth.password_file(data_dir).exists()


def test_the_cli_refuses_a_guessable_password(web: SimpleNamespace, data_dir: Path) -> None:
    run = facepro(web.ctx.settings.source, "set-password", "--stdin", stdin="Password123!\n")
    assert run.returncode == 2 and "too easy to guess" in run.stderr and "Password123!" not in run.stderr
    assert auth.verify_password(data_dir, PASSWORD)  # unchanged


@pytest.mark.parametrize("secure", [True, False])
def test_the_secure_cookie_flag_follows_the_setting(tmp_path: Path, write_settings: Any, data_dir: Path,
                                                    secure: bool) -> None:
    built = make_web(tmp_path, write_settings, data_dir, parts=False, web={"secure_cookies": secure})
    client = built.client
    base = "https://device.local" if secure else "http://localhost"
    page = client.get("/login", base_url=base).get_data(as_text=True)
    response = client.post("/login", data={"password": PASSWORD, "csrf_token": csrf_from(page)}, base_url=base)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE) and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert ("Secure" in cookie) is secure
