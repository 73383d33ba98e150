"""Who may call what on the machine API: every endpoint with a read token, an admin token, no
token, a revoked token, an expired token and a logged-in browser session.

The app runs over a real database, telemetry and backup manager (tests/support/api.py).
Refused requests must change nothing; the admin request of a changing endpoint runs last
and its effect is checked.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import MEDIA_DIR, write_settings_file
from tests.support.api import CREDENTIALS, call, make_api
from tests.test_web_app import add_events

PHOTO = (MEDIA_DIR / "lin-manuel-miranda.png").read_bytes()


def photo_upload() -> dict[str, Any]:
    return {"data": {"photos": [(io.BytesIO(PHOTO), "lin.png")]}, "content_type": "multipart/form-data"}


def add_person(api: SimpleNamespace, name: str = "Ann") -> None:
    """Add ``name`` with no faces through the API itself."""
    assert call(api, "admin", "POST", "/api/v1/people", json={"name": name}).status_code == 201


def state(api: SimpleNamespace) -> tuple[Any, ...]:
    """What a changing request could change: people and faces, backups, face crops on disk."""
    people = sorted((p["name"], p["embeddings"]) for p in api.people())
    crops = sorted(str(p) for p in (api.ctx.data_dir / "faces").rglob("*") if p.is_file())
    return people, sorted(b["name"] for b in api.ctx.backups.list("local")), crops


@dataclass
class Endpoint:
    method: str
    path: str  # may hold {backup} or {job}: the shared app's archive and finished job
    scope: str | None  # None: open; "read"; "admin"
    ok: int = 200
    body: Callable[[], dict[str, Any]] = dict
    # Changing endpoints run on a fresh app: setup prepares it, check sees the admin's effect.
    changes: bool = False
    setup: Callable[[SimpleNamespace], None] = lambda api: None
    check: Callable[[SimpleNamespace, Any, str], None] = lambda api, response, path: None


def _people_has(name: str, faces: int) -> Callable[[SimpleNamespace, Any, str], None]:
    def check(api: SimpleNamespace, response: Any, path: str) -> None:
        assert (name, faces) in [(p["name"], p["embeddings"]) for p in api.people()]
    return check


def _nobody(api: SimpleNamespace, response: Any, path: str) -> None:
    assert api.people() == [] and response.get_json()["removed_faces"] == 0


def _backup_started(api: SimpleNamespace, response: Any, path: str) -> None:
    job = api.ctx.backups.wait(response.get_json()["job"], 30)
    assert job["state"] == "ok", job
    assert len(api.ctx.backups.list("local")) == 1


def _archive_bytes(api: SimpleNamespace, response: Any, path: str) -> None:
    name = path.rsplit("/", 1)[1]
    assert response.data == (api.archives / name).read_bytes() and len(response.data) > 100
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}"'


def _jpeg(api: SimpleNamespace, response: Any, path: str) -> None:
    assert response.mimetype == "image/jpeg" and response.data[:3] == b"\xff\xd8\xff"


ENDPOINTS = {
    "health": Endpoint("GET", "/api/v1/health", None),
    "openapi": Endpoint("GET", "/api/v1/openapi.json", None),
    "status": Endpoint("GET", "/api/v1/status", "read"),
    "people-list": Endpoint("GET", "/api/v1/people", "read"),
    "people-get": Endpoint("GET", "/api/v1/people/Ann", "read"),
    "people-create": Endpoint("POST", "/api/v1/people", "admin", 201, body=lambda: {"json": {"name": "Bea"}},
                              changes=True, check=_people_has("Bea", 0)),
    "people-faces": Endpoint("POST", "/api/v1/people/Ann/faces", "admin", 201, body=photo_upload, changes=True,
                             setup=add_person, check=_people_has("Ann", 1)),
    "people-remove": Endpoint("DELETE", "/api/v1/people/Ann", "admin", changes=True, setup=add_person,
                              check=_nobody),
    "events-list": Endpoint("GET", "/api/v1/events", "read"),
    "events-get": Endpoint("GET", "/api/v1/events/1", "read"),
    "events-snapshot": Endpoint("GET", "/api/v1/events/1/snapshot.jpg", "read", check=_jpeg),
    "cameras": Endpoint("GET", "/api/v1/cameras", "read"),
    "camera-latest": Endpoint("GET", "/api/v1/cameras/door/latest.jpg", "read", check=_jpeg),
    "backups-list": Endpoint("GET", "/api/v1/backups", "read"),
    "backups-create": Endpoint("POST", "/api/v1/backups", "admin", 202, body=lambda: {"json": {"include": ["db"]}},
                               changes=True, check=_backup_started),
    "backups-job": Endpoint("GET", "/api/v1/backups/jobs/{job}", "read"),
    "backups-download": Endpoint("GET", "/api/v1/backups/targets/local/{backup}", "admin", check=_archive_bytes),
}


def expected(endpoint: Endpoint, credential: str) -> tuple[int, str | None]:
    """(status, error code) for ``credential`` on ``endpoint``."""
    if credential == "revoked":
        return 401, "token_revoked"
    if credential == "expired":
        return 401, "token_expired"
    if endpoint.scope is None:
        return endpoint.ok, None
    if credential in ("none", "session"):  # a browser session is no credential here
        return 401, "token_required"
    if endpoint.scope == "admin" and credential == "read":
        return 403, "insufficient_scope"
    return endpoint.ok, None


def _with_people(api: SimpleNamespace) -> SimpleNamespace:
    from edge.db import web_queries

    api.people = lambda: web_queries.list_people(api.ctx.db_path)
    return api


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One app for every request that changes nothing: Ann enrolled (no faces), three events,
    a backup archive and the finished job that wrote it."""
    tmp = tmp_path_factory.mktemp("api")
    data_dir = tmp / "data"
    data_dir.mkdir()
    api = _with_people(make_api(tmp, lambda overrides: write_settings_file(tmp / "settings.json", data_dir,
                                                                           overrides), data_dir))
    add_person(api)
    add_events(api.ctx)
    job_id = api.ctx.backups.start(include=["settings"])
    job = api.ctx.backups.wait(job_id, 30)
    assert job["state"] == "ok", job
    api.names = {"job": job_id, "backup": api.ctx.backups.list("local")[0]["name"]}
    return api


@pytest.fixture
def api(tmp_path: Path, write_settings: Any, data_dir: Path) -> SimpleNamespace:
    return _with_people(make_api(tmp_path, write_settings, data_dir))


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_endpoint_with_each_credential(request: pytest.FixtureRequest, name: str) -> None:
    endpoint = ENDPOINTS[name]
    api = request.getfixturevalue("api" if endpoint.changes else "shared")
    endpoint.setup(api)
    path = endpoint.path.format(**getattr(api, "names", {}))
    before = state(api)
    # the admin token last: for a changing endpoint it is the one request that may change things
    order = [c for c in CREDENTIALS if c != "admin"] + ["admin"]
    for credential in order:
        response = call(api, credential, endpoint.method, path, **endpoint.body())
        status, code = expected(endpoint, credential)
        assert response.status_code == status, (credential, response.get_data(as_text=True)[:300])
        if code is not None:
            assert response.get_json()["code"] == code, credential
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith('Bearer realm="facepro"')
        elif response.mimetype == "application/json":
            assert "code" not in response.get_json(), credential
        if credential != "admin" or not endpoint.changes:
            assert state(api) == before, f"{credential} changed something"
        if credential in ("read", "admin") and status == endpoint.ok:
            endpoint.check(api, response, path)


def test_metrics_takes_a_read_token_and_keeps_the_page_rules_without_one(shared: SimpleNamespace) -> None:
    for credential, status in (("read", 200), ("admin", 200), ("session", 200), ("none", 401),
                               ("revoked", 401), ("expired", 401)):
        response = call(shared, credential, "GET", "/metrics")
        assert response.status_code == status, credential
        if status == 200:
            assert response.mimetype == "text/plain" and "facepro_" in response.get_data(as_text=True)


def test_a_read_token_cannot_change_anything(api: SimpleNamespace) -> None:
    """Every state-changing route under /api/v1/, found in the app's own URL map."""
    add_person(api)
    add_events(api.ctx)
    before = state(api)
    changing = [(rule.rule, method) for rule in api.app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
                for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"})]
    assert len(changing) >= 4
    for rule, method in changing:
        path = rule.replace("<name>", "Ann")
        assert "<" not in path, rule
        response = call(api, "read", method, path, **photo_upload())
        assert response.status_code == 403 and response.get_json()["code"] == "insufficient_scope", (method, path)
    archive = api.ctx.backups.create(target="local", include=["settings"])["name"]
    before = state(api)
    download = call(api, "read", "GET", f"/api/v1/backups/targets/local/{archive}")
    assert download.status_code == 403
    assert state(api) == before


def test_a_token_never_grants_the_browser_sessions_rights(shared: SimpleNamespace) -> None:
    for path in ("/", "/people", "/backups", "/events"):
        response = call(shared, "admin", "GET", path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    for path in ("/api/status", "/api/events", "/api/backups", "/snapshots/x.jpg"):
        assert call(shared, "admin", "GET", path).status_code == 401, path
    before = state(shared)
    assert call(shared, "admin", "POST", "/api/backups", json={}).status_code == 401
    for path in ("/people/enroll", "/backups/create", "/backups/import"):
        response = call(shared, "admin", "POST", path, data={"name": "X", "include": "db"})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert state(shared) == before


def test_the_api_needs_no_csrf_token_and_ignores_the_session_cookie(shared: SimpleNamespace) -> None:
    # the admin client holds no session and sends no CSRF token: allowed
    response = call(shared, "admin", "POST", "/api/v1/people", json={"name": "Cy"})
    assert response.status_code == 201
    # a logged-in session with a valid CSRF token is still not a credential here
    response = shared.session.post("/api/v1/people", json={"name": "Di"}, headers={"X-CSRF-Token": shared.csrf})
    assert response.status_code == 401 and response.get_json()["code"] == "token_required"


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token {read}", "Bearer {read}x", "Bearer {read} {read}",
    "Bearer " + "A" * 5000, "Bearer fpe_\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9",
])
def test_malformed_authorization_is_refused(shared: SimpleNamespace, header: str) -> None:
    value = header.format(read=shared.tokens["read"])
    response = shared.client.get("/api/v1/status", headers={"Authorization": value})
    assert response.status_code == 401 and response.get_json()["code"] == "invalid_token"


def test_bearer_scheme_is_case_insensitive(shared: SimpleNamespace) -> None:
    response = shared.client.get("/api/v1/status", headers={"Authorization": f"bearer {shared.tokens['read']}"})
    assert response.status_code == 200


@pytest.mark.parametrize("param", ["access_token", "token", "api_key"])
def test_a_token_in_the_url_is_refused_even_with_a_header(shared: SimpleNamespace, param: str) -> None:
    response = call(shared, "read", "GET", f"/api/v1/status?{param}={shared.tokens['read']}")
    assert response.status_code == 400 and response.get_json()["code"] == "token_in_url"


def test_revoking_takes_effect_on_the_next_request(api: SimpleNamespace) -> None:
    from edge.web import tokens

    assert call(api, "read", "GET", "/api/v1/status").status_code == 200
    tokens.revoke(api.ctx.db_path, "reader")
    response = call(api, "read", "GET", "/api/v1/status")
    assert response.status_code == 401 and response.get_json()["code"] == "token_revoked"


def test_unknown_routes_and_methods_answer_json_codes(shared: SimpleNamespace) -> None:
    assert call(shared, "none", "GET", "/api/v1/nothing").status_code == 401  # no route is shown without a token
    response = call(shared, "read", "GET", "/api/v1/nothing")
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"
    response = call(shared, "admin", "PUT", "/api/v1/people")
    assert response.status_code == 405 and response.get_json()["code"] == "method_not_allowed"
    assert call(shared, "read", "GET", "/api/v1/events/999").get_json()["code"] == "not_found"
    assert call(shared, "read", "GET", "/api/v1/people/Nobody").status_code == 404


def test_failed_token_checks_are_rate_limited_per_address(api: SimpleNamespace) -> None:
    from edge.web.ratelimit import SlidingWindow

    api.app.extensions["facepro_api_gate"].failures = SlidingWindow(10, 60)
    wrong = {"Authorization": "Bearer fpe_" + "x" * 43}
    for _ in range(10):
        assert api.client.get("/api/v1/status", headers=wrong).status_code == 401
    # the address is now refused, even with a good token: guessing gains nothing
    response = call(api, "read", "GET", "/api/v1/status")
    assert response.status_code == 429 and response.get_json()["code"] == "too_many_failures"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    other = api.app.test_client()
    response = other.get("/api/v1/status", environ_base={"REMOTE_ADDR": "10.0.0.7"},
                         headers={"Authorization": f"Bearer {api.tokens['read']}"})
    assert response.status_code == 200
    # requests without any token are not failures and are not blocked by them
    assert call(api, "none", "GET", "/api/v1/health").status_code == 200


def test_last_use_is_recorded_by_name(api: SimpleNamespace) -> None:
    from edge.web import tokens

    before = {t["name"]: t["last_used_at"] for t in tokens.list_tokens(api.ctx.db_path)}
    assert before["reader"] is None
    assert call(api, "read", "GET", "/api/v1/status").status_code == 200
    after = {t["name"]: t["last_used_at"] for t in tokens.list_tokens(api.ctx.db_path)}
    assert after["reader"] is not None and after["installer"] is None
