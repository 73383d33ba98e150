"""Status page and JSON API through Flask's test client: every route, and every refusal.

The app runs over a real migrated SQLite file, the real telemetry sampler and the real
backup manager on a local target; the pipeline is a small object answering its documented
interface (the real one runs in tests/test_web_browser.py).
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.events import EventStore
from edge.db.migrate import migrate_database
from edge.web import auth
from edge.web.app import create_app
from tests.conftest import MEDIA_DIR
from tests.support.web import csrf_from, login

PASSWORD = "correct horse battery"
MQTT_SECRET = "mqtt-s3cret-value"
BACKUP_SECRET = "backup-passphrase-xyz"


class StandInPipeline:
    """Answers the pipeline's documented interface (ServiceContext.pipeline) with fixed data."""

    def __init__(self) -> None:
        self.cameras = [{"name": "door", "online": True, "fps_capture": 25.0, "fps_processed": 12.5,
                         "frames_captured": 100, "frames_processed": 50, "frames_dropped": 50,
                         "reconnects": 0, "last_frame_at": "2026-01-01T00:00:00Z", "source_kind": "file"}]
        self.ok = True

    def cameras_status(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.cameras]

    def models_info(self) -> dict[str, Any]:
        return {"models_dir": "/models/face",
                "detector": {"file": "scrfd_2.5g_bnkps.onnx", "provider": "CPUExecutionProvider",
                             "input_shape": [1, 3, 640, 640]},
                "embedder": {"file": "mobilefacenet.onnx", "provider": "CPUExecutionProvider", "dim": 512}}

    def healthy(self) -> tuple[bool, list[str]]:
        return (True, []) if self.ok else (False, ["inference worker stuck"])

    def reload_gallery(self) -> None:
        pass


def make_web(tmp_path: Path, write_settings: Any, data_dir: Path, *, public_read: bool = False,
             parts: bool = True, max_upload_mb: float = 2, web: dict[str, Any] | None = None,
             clock: Any = None) -> SimpleNamespace:
    archives = tmp_path / "archives"
    path = write_settings({
        "device": {"id": "test-device", "name": "Front door unit"},
        "web": {"host": "127.0.0.1", "port": 0, "public_read": public_read, "max_upload_mb": max_upload_mb,
                **(web or {})},
        "mqtt": {"enabled": False, "password": MQTT_SECRET, "username": "hub"},
        "backup": {"schedule": None, "targets": [{"name": "local", "type": "local", "path": str(archives)}],
                   "encrypt": {"enabled": False, "passphrase": BACKUP_SECRET, "key_file": None}},
    })
    settings = load_settings(path)
    version = migrate_database(settings)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    ctx.metrics.set("schema_version", version)
    if parts:
        from edge.backup.manager import BackupManager
        from edge.telemetry.component import Telemetry

        ctx.pipeline = StandInPipeline()
        telemetry = Telemetry(ctx, persist=False)
        ctx.telemetry, ctx.alerts = telemetry, telemetry.alerts
        for _ in range(3):
            ctx.metrics.observe("detect", 0.012, "door")
            telemetry.sample()
        ctx.backups = BackupManager(settings, ctx.device_id, bus=ctx.bus)
    auth.set_password(data_dir, PASSWORD)
    app = create_app(ctx, clock=clock) if clock is not None else create_app(ctx)
    return SimpleNamespace(ctx=ctx, app=app, client=app.test_client(), archives=archives)


@pytest.fixture
def web(tmp_path: Path, write_settings: Any, data_dir: Path) -> SimpleNamespace:
    return make_web(tmp_path, write_settings, data_dir)


@pytest.fixture
def bare(tmp_path: Path, write_settings: Any, data_dir: Path) -> SimpleNamespace:
    """No part running at all: every section must say 'not available'."""
    return make_web(tmp_path, write_settings, data_dir, parts=False)


def wait_job(client: Any, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/backups/jobs/{job_id}").get_json()
        if job["state"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError(f"backup job {job_id} still running after {timeout} s")


# -- health ------------------------------------------------------------------------------

def test_health_is_open_and_says_why_it_is_unhealthy(web: SimpleNamespace) -> None:
    response = web.client.get("/api/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}

    web.ctx.pipeline.cameras[0]["online"] = False
    web.ctx.pipeline.ok = False
    response = web.client.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unhealthy"
    assert "camera door is offline" in body["reasons"] and "inference worker stuck" in body["reasons"]

    web.ctx.pipeline = None
    assert "pipeline is not running" in web.client.get("/api/health").get_json()["reasons"]


def test_health_reports_an_unreachable_database(bare: SimpleNamespace) -> None:
    os.unlink(bare.ctx.db_path)
    response = bare.client.get("/api/health")
    assert response.status_code == 503
    assert any(str(bare.ctx.db_path) in reason for reason in response.get_json()["reasons"])


# -- access rules ------------------------------------------------------------------------

READ_PAGES = ["/", "/events", "/people", "/backups", "/partials/charts"]
READ_API = ["/api/status", "/api/events", "/api/backups", "/api/history", "/metrics"]


def test_everything_but_health_and_login_needs_login_when_reading_is_not_public(web: SimpleNamespace) -> None:
    for path in READ_PAGES:
        response = web.client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    for path in READ_API + ["/snapshots/a.jpg", "/faces/x/a.png"]:
        response = web.client.get(path)
        assert response.status_code == 401, path
    assert web.client.get("/login").status_code == 200
    assert web.client.get("/static/app.js").status_code == 200


def test_public_read_opens_pages_but_every_action_still_needs_login(tmp_path: Path, write_settings: Any,
                                                                   data_dir: Path) -> None:
    web = make_web(tmp_path, write_settings, data_dir, public_read=True)
    for path in READ_PAGES + READ_API:
        assert web.client.get(path).status_code == 200, path
    page = web.client.get("/backups").get_data(as_text=True)
    assert "Log in to create, restore, delete or import backups" in page
    token = csrf_from(page)
    assert web.client.post("/api/backups", json={}, headers={"X-CSRF-Token": token}).status_code == 401
    for path in ("/backups/create", "/backups/restore", "/backups/delete", "/backups/import",
                 "/people/enroll", "/people/1/remove", "/backups/confirm"):
        response = web.client.post(path, data={"csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert web.ctx.backups.list("local") == []


def test_login_wrong_password_right_password_logout(web: SimpleNamespace) -> None:
    token = csrf_from(web.client.get("/login").get_data(as_text=True))
    response = web.client.post("/login", data={"password": "guess", "csrf_token": token})
    assert response.status_code == 401 and "Wrong password" in response.get_data(as_text=True)
    assert web.client.get("/api/status").status_code == 401

    response = web.client.post("/login", data={"password": PASSWORD, "csrf_token": token, "next": "/events"})
    assert response.status_code == 302 and response.headers["Location"] == "/events"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert web.client.get("/api/status").status_code == 200

    with web.client.session_transaction() as session:
        token = session["csrf"]
    assert web.client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert web.client.get("/api/status").status_code == 401


def test_login_never_redirects_off_the_device(web: SimpleNamespace) -> None:
    token = csrf_from(web.client.get("/login").get_data(as_text=True))
    response = web.client.post("/login", data={"password": PASSWORD, "csrf_token": token,
                                               "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_login_needs_csrf_token(web: SimpleNamespace) -> None:
    web.client.get("/login")
    response = web.client.post("/login", data={"password": PASSWORD})
    assert response.status_code == 400
    assert web.client.get("/api/status").status_code == 401


def test_login_attempts_are_rate_limited_per_client(web: SimpleNamespace) -> None:
    token = csrf_from(web.client.get("/login").get_data(as_text=True))
    for _ in range(5):
        assert web.client.post("/login", data={"password": "nope", "csrf_token": token}).status_code == 401
    response = web.client.post("/login", data={"password": PASSWORD, "csrf_token": token})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert web.client.get("/api/status").status_code == 401
    # another address is not affected
    other = web.app.test_client()
    token = csrf_from(other.get("/login", environ_base={"REMOTE_ADDR": "10.0.0.9"}).get_data(as_text=True))
    response = other.post("/login", data={"password": PASSWORD, "csrf_token": token},
                          environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 302


def test_state_changes_need_the_session_csrf_token(web: SimpleNamespace) -> None:
    token = login(web.client, PASSWORD)
    assert web.client.post("/api/backups", json={}).status_code == 400
    assert web.client.post("/api/backups", json={}, headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert web.client.post("/backups/create", data={"csrf_token": "forged", "include": "db"}).status_code == 400
    assert web.client.post("/people/enroll", data={"name": "x"}).status_code == 400
    assert web.ctx.backups.list("local") == []
    # a token from another session is refused too
    other = web.app.test_client()
    other_token = login(other, PASSWORD)
    assert other_token != token
    assert web.client.post("/api/backups", json={}, headers={"X-CSRF-Token": other_token}).status_code == 400


def test_a_new_password_signs_out_existing_sessions(web: SimpleNamespace, data_dir: Path) -> None:
    login(web.client, PASSWORD)
    assert web.client.get("/api/status").status_code == 200
    auth.set_password(data_dir, "another long password")
    assert web.client.get("/api/status").status_code == 401


# -- pages and status ----------------------------------------------------------------------

def test_dashboard_shows_every_section(web: SimpleNamespace) -> None:
    login(web.client, PASSWORD)
    html = web.client.get("/").get_data(as_text=True)
    for text in ("Front door unit", "test-device", "Schema version", "scrfd_2.5g_bnkps.onnx",
                 "CPUExecutionProvider", 'data-camera="door"', "12.5", "No active alerts", "Last backup",
                 "<svg", 'data-chart="cpu_percent"', "detect"):
        assert text in html, text
    assert "MQTT is off (mqtt.enabled is false)" in html


def test_every_section_renders_when_its_part_is_missing(bare: SimpleNamespace) -> None:
    login(bare.client, PASSWORD)
    html = bare.client.get("/").get_data(as_text=True)
    for what in ("Camera status", "Monitoring", "Alerts", "Backups"):
        assert f"{what} not available" in html, what
    bare.ctx.settings.data["mqtt"]["enabled"] = True  # configured, but the part is not running
    bare.app.extensions["facepro_status_cache"].clear()
    assert "MQTT not available" in bare.client.get("/").get_data(as_text=True)
    assert "Monitoring history not available" in html
    status = bare.client.get("/api/status").get_json()
    assert status["cameras"] == {"available": False} and status["backup"] == {"available": False}
    assert "backups are not available" in bare.client.get("/backups").get_data(as_text=True)
    assert bare.client.get("/api/backups").status_code == 503
    assert bare.client.get("/events").status_code == 200 and bare.client.get("/people").status_code == 200


def test_a_failing_part_does_not_take_the_page_down(web: SimpleNamespace) -> None:
    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("camera thread crashed")

    web.ctx.pipeline.cameras_status = broken
    login(web.client, PASSWORD)
    assert "RuntimeError: camera thread crashed" in web.client.get("/").get_data(as_text=True)
    assert web.client.get("/api/status").get_json()["cameras"]["available"] is False
    assert web.client.get("/api/health").status_code == 503


def test_status_is_computed_once_a_second_however_many_ask(web: SimpleNamespace) -> None:
    calls = []
    answer = web.ctx.pipeline.models_info
    web.ctx.pipeline.models_info = lambda: calls.append(1) or answer()
    cache = web.app.extensions["facepro_status_cache"]
    assert cache.ttl_s == 1.0
    cache.ttl_s = 3600.0  # the burst below counts as within the second, however slow the machine
    login(web.client, PASSWORD)
    for _ in range(5):
        assert web.client.get("/api/status").status_code == 200
    assert web.client.get("/").status_code == 200
    assert len(calls) == 1
    cache.ttl_s = 1.0
    time.sleep(1.1)
    web.client.get("/api/status")
    assert len(calls) == 2


def test_api_status_figures(web: SimpleNamespace) -> None:
    login(web.client, PASSWORD)
    status = web.client.get("/api/status").get_json()
    assert status["device"] == {"id": "test-device", "name": "Front door unit"}
    assert status["schema_version"] >= 8 and status["uptime_s"] >= 0
    assert status["cameras"]["data"][0]["fps_processed"] == 12.5
    assert status["models"]["data"]["detector"]["provider"] == "CPUExecutionProvider"
    assert status["stages"]["detect"]["count"] == 3
    assert status["telemetry"]["available"] and status["alerts"]["data"] == []
    assert status["backup"]["data"]["last_success_at"] is None
    assert status["health"] == {"status": "ok"}
    assert status["time"].endswith("Z")
    history = web.client.get("/api/history?window=600").get_json()
    assert history["available"] and any(c["id"] == "cpu_percent" for c in history["charts"])
    assert web.client.get("/api/history?window=abc").status_code == 400


def test_no_secret_in_any_page_or_answer(web: SimpleNamespace, data_dir: Path) -> None:
    login(web.client, PASSWORD)
    secret_key = (data_dir / auth.SECRET_KEY_FILE).read_text()
    password_hash = json.loads((data_dir / auth.PASSWORD_FILE).read_text())["hash"]
    for path in READ_PAGES + READ_API + ["/api/health", "/login"]:
        body = web.client.get(path).get_data(as_text=True)
        for secret in (PASSWORD, MQTT_SECRET, BACKUP_SECRET, secret_key, password_hash):
            assert secret not in body, (path, secret[:4])


def test_a_secret_quoted_by_a_part_is_masked(web: SimpleNamespace) -> None:
    def leaky() -> dict[str, Any]:
        raise RuntimeError(f"share refused user hub with password {BACKUP_SECRET}")

    web.ctx.backups.last_status = leaky
    login(web.client, PASSWORD)
    for path in ("/", "/api/status"):
        body = web.client.get(path).get_data(as_text=True)
        assert "share refused user hub with password ***" in body and BACKUP_SECRET not in body


def test_metrics_text(web: SimpleNamespace) -> None:
    login(web.client, PASSWORD)
    response = web.client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "facepro" in response.get_data(as_text=True)


# -- events and files ------------------------------------------------------------------------

def add_events(ctx: ServiceContext) -> None:
    snaps = ctx.data_dir / "snapshots" / "2026-01-01"
    snaps.mkdir(parents=True)
    shutil.copy(MEDIA_DIR / "obama.jpg", snaps / "e1.jpg")
    with EventStore(ctx.db_path) as store:
        store.insert("face_recognized", "Obama", 0.72, "door", "snapshots/2026-01-01/e1.jpg", time.time() - 60)
        store.insert("face_unknown", "unknown", 0.1, "garage", None, time.time() - 30)
        store.insert("face_recognized", "Biden", 0.65, "garage", "snapshots/../facepro.db", time.time())


def test_events_api_and_page_filter_and_link_snapshots(web: SimpleNamespace) -> None:
    add_events(web.ctx)
    login(web.client, PASSWORD)
    events = web.client.get("/api/events").get_json()["events"]
    assert [e["person"] for e in events] == ["Biden", "unknown", "Obama"]
    assert events[2]["snapshot"] == "/snapshots/2026-01-01/e1.jpg"
    assert events[0]["snapshot"] is None  # a path outside the snapshot dir is never linked
    assert events[2]["timestamp"].endswith("Z")
    assert [e["person"] for e in web.client.get("/api/events?camera=garage").get_json()["events"]] == [
        "Biden", "unknown"]
    assert [e["id"] for e in web.client.get("/api/events?type=face_unknown").get_json()["events"]] == [2]
    assert [e["id"] for e in web.client.get("/api/events?person=Obama").get_json()["events"]] == [1]
    assert [e["id"] for e in web.client.get("/api/events?limit=1&before_id=3").get_json()["events"]] == [2]
    assert web.client.get("/api/events?limit=zero").status_code == 400

    image = web.client.get(events[2]["snapshot"])
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.data == (MEDIA_DIR / "obama.jpg").read_bytes()

    html = web.client.get("/events?camera=door").get_data(as_text=True)
    assert 'src="/snapshots/2026-01-01/e1.jpg"' in html and "Biden" not in html.split('id="events"')[1]
    assert web.client.get("/events?limit=x").status_code == 200  # the page shows the error line


@pytest.mark.parametrize("path", [
    "/snapshots/../facepro.db", "/snapshots/..%2f..%2fetc%2fpasswd", "/snapshots/%2e%2e/web-secret-key",
    "/faces/../web-password.json", "/faces/..%2Fweb-password.json", "/snapshots//etc/passwd",
    "/snapshots/2026-01-01/../../facepro.db", "/snapshots/2026-01-01/e1.txt", "/snapshots/link.jpg",
    "/faces/nobody/missing.png",
])
def test_file_serving_cannot_escape_its_directory(web: SimpleNamespace, path: str) -> None:
    add_events(web.ctx)
    (web.ctx.data_dir / "snapshots" / "2026-01-01" / "e1.txt").write_text("not an image")
    outside = web.ctx.data_dir / "outside.jpg"
    shutil.copy(MEDIA_DIR / "biden.jpg", outside)
    (web.ctx.data_dir / "snapshots" / "link.jpg").symlink_to(outside)
    login(web.client, PASSWORD)
    # (a doubled slash is first redirected to the merged path, which is then refused)
    assert web.client.get(path, follow_redirects=True).status_code == 404


# -- people ------------------------------------------------------------------------------------

def test_enrol_by_upload_show_crops_and_remove(web: SimpleNamespace) -> None:
    token = login(web.client, PASSWORD)
    photo = (MEDIA_DIR / "lin-manuel-miranda.png").read_bytes()
    response = web.client.post("/people/enroll", data={
        "csrf_token": token, "name": "Lin-Manuel Miranda",
        "photos": [(io.BytesIO(photo), "lin.png")]}, content_type="multipart/form-data")
    assert response.status_code == 303
    html = web.client.get("/people").get_data(as_text=True)
    assert "Enrolled Lin-Manuel Miranda (1 face(s))" in html
    assert 'data-person="Lin-Manuel Miranda"' in html
    crop_url = html.split('class="faces">')[1].split('src="')[1].split('"')[0]
    assert crop_url.startswith("/faces/Lin-Manuel%20Miranda/")
    crop = web.client.get(crop_url)
    assert crop.status_code == 200 and crop.mimetype == "image/png"

    user_id = int(html.split("/people/")[1].split("/remove")[0])
    assert web.client.post(f"/people/{user_id}/remove", data={"csrf_token": token}).status_code == 303
    html = web.client.get("/people").get_data(as_text=True)
    assert "Removed Lin-Manuel Miranda" in html and "Nobody is enrolled yet" in html
    assert web.client.get(crop_url).status_code == 404
    assert "no enrolled person with id 999" in web.client.post(
        "/people/999/remove", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)


@pytest.mark.parametrize("filename,data,message", [
    ("notes.txt", b"hello, not an image", "notes.txt: not a JPEG or PNG image"),
    ("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 200, "broken.jpg: the JPEG file is damaged"),
    ("group.jpg", (MEDIA_DIR / "two_people.jpg").read_bytes(), "group.jpg: 2 faces found"),
])
def test_enrol_refuses_bad_photos_and_writes_nothing(web: SimpleNamespace, filename: str, data: bytes,
                                                     message: str) -> None:
    token = login(web.client, PASSWORD)
    response = web.client.post("/people/enroll", data={
        "csrf_token": token, "name": "Someone", "photos": [(io.BytesIO(data), filename)]},
        content_type="multipart/form-data", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert message in html
    assert "Nobody is enrolled yet" in html
    assert not (web.ctx.data_dir / "faces").exists() or not any((web.ctx.data_dir / "faces").rglob("*.png"))
    assert not any((web.ctx.data_dir / "tmp").glob("*"))


def test_oversized_uploads_are_refused_with_413(web: SimpleNamespace) -> None:
    token = login(web.client, PASSWORD)
    big = b"\xff\xd8\xff" + b"\x00" * (3 * 1024 * 1024)  # the limit in this test is 2 MB
    response = web.client.post("/people/enroll", data={"csrf_token": token, "name": "Big",
                                                       "photos": [(io.BytesIO(big), "big.jpg")]},
                               content_type="multipart/form-data")
    assert response.status_code == 413 and "web.max_upload_mb" in response.get_data(as_text=True)
    response = web.client.post("/backups/import", data={"csrf_token": token,
                                                        "archive": (io.BytesIO(big), "x.zip")},
                               content_type="multipart/form-data")
    assert response.status_code == 413
    assert web.ctx.backups.list("local") == [] and not (web.ctx.data_dir / "faces").exists()


# -- backups -------------------------------------------------------------------------------------

def test_backup_wizard_create_list_restore_delete(web: SimpleNamespace) -> None:
    token = login(web.client, PASSWORD)
    assert web.client.post("/api/backups", json={"include": ["nope"]},
                           headers={"X-CSRF-Token": token}).status_code == 400
    assert web.client.post("/api/backups", json={"target": "usb9"},
                           headers={"X-CSRF-Token": token}).status_code == 400
    response = web.client.post("/api/backups", json={"include": ["db", "settings"], "target": "local"},
                               headers={"X-CSRF-Token": token})
    assert response.status_code == 202
    job = wait_job(web.client, response.get_json()["job"])
    assert job["state"] == "ok" and job["progress"] == 1.0, job
    assert web.client.get("/api/backups/jobs/nope").status_code == 404

    listing = web.client.get("/api/backups").get_json()
    backups = listing["targets"][0]["backups"]
    assert listing["targets"][0]["name"] == "local" and len(backups) == 1
    name = backups[0]["name"]
    assert backups[0]["size"] > 0 and backups[0]["created_at"]
    html = web.client.get("/backups").get_data(as_text=True)
    assert name in html and f'value="local/{name}"' in html

    # the form route starts a job too and sends the browser to the progress view
    response = web.client.post("/backups/create", data={"csrf_token": token, "include": ["db"], "target": ""})
    assert response.status_code == 303 and "/backups?job=" in response.headers["Location"]
    wait_job(web.client, response.headers["Location"].split("job=")[1])

    confirm = web.client.post("/backups/confirm", data={"csrf_token": token, "action": "restore",
                                                       "backup": f"local/{name}"}).get_data(as_text=True)
    assert "will <strong>overwrite</strong>" in confirm and str(web.ctx.db_path) in confirm
    # the archive holds the database and settings only: the face images are not touched
    assert "the archive holds db, settings" in confirm and str(web.ctx.data_dir / "faces") not in confirm
    # not confirmed: nothing happens
    response = web.client.post("/backups/restore", data={"csrf_token": token, "target": "local", "name": name},
                               follow_redirects=True)
    assert "restore not confirmed" in response.get_data(as_text=True)
    response = web.client.post("/backups/restore", data={"csrf_token": token, "target": "local", "name": name,
                                                         "confirm": "yes", "include": ["db"]},
                               follow_redirects=True)
    assert f"Restored {name}" in response.get_data(as_text=True)

    confirm = web.client.post("/backups/confirm", data={"csrf_token": token, "action": "delete",
                                                       "backup": f"local/{name}"}).get_data(as_text=True)
    assert "cannot be undone" in confirm
    with web.ctx.backups.exclusive():  # a backup or restore is running (it may read this archive)
        response = web.client.post("/backups/delete", data={"csrf_token": token, "target": "local",
                                                            "name": name, "confirm": "yes"},
                                   follow_redirects=True)
    assert "delete refused" in response.get_data(as_text=True)
    assert "try again when it has finished" in response.get_data(as_text=True)
    assert name in [b["name"] for b in web.ctx.backups.list("local")]
    response = web.client.post("/backups/delete", data={"csrf_token": token, "target": "local", "name": name,
                                                        "confirm": "yes"}, follow_redirects=True)
    assert f"Deleted {name} from local" in response.get_data(as_text=True)
    assert name not in [b["name"] for b in web.ctx.backups.list("local")]
    response = web.client.post("/backups/delete", data={"csrf_token": token, "target": "local", "name": name,
                                                        "confirm": "yes"}, follow_redirects=True)
    assert "no backup named" in response.get_data(as_text=True)
    # the newest archive the device made itself stays: a browser session cannot remove it
    newest = web.ctx.backups.store.own_archives("local")[-1]
    assert "newest own" in web.client.get("/backups").get_data(as_text=True)
    confirm = web.client.post("/backups/confirm", data={"csrf_token": token, "action": "delete",
                                                       "backup": f"local/{newest}"}).get_data(as_text=True)
    assert "it is kept" in confirm and "confirm-delete" not in confirm
    response = web.client.post("/backups/delete", data={"csrf_token": token, "target": "local", "name": newest,
                                                        "confirm": "yes"}, follow_redirects=True)
    assert f"{newest} is the newest backup this device made itself on local: it is kept" in \
        response.get_data(as_text=True)
    assert newest in [b["name"] for b in web.ctx.backups.list("local")]
    response = web.client.post("/backups/confirm", data={"csrf_token": token, "action": "restore"},
                               follow_redirects=True)
    assert "select a backup in the list first" in response.get_data(as_text=True)


def test_backup_import_verifies_before_listing(web: SimpleNamespace, tmp_path: Path) -> None:
    token = login(web.client, PASSWORD)
    job = wait_job(web.client, web.client.post("/api/backups", json={}, headers={"X-CSRF-Token": token})
                   .get_json()["job"])
    name = job["result"]["name"] if "name" in (job["result"] or {}) else web.ctx.backups.list("local")[0]["name"]
    archive = tmp_path / name
    shutil.copy(web.archives / name, archive)
    web.ctx.backups.delete("local", name, force=True)

    def upload(data: bytes, filename: str) -> str:
        return web.client.post("/backups/import", data={"csrf_token": token,
                                                        "archive": (io.BytesIO(data), filename)},
                               content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)

    assert "not a backup archive (.zip or .zip.enc)" in upload(b"PK\x03\x04", "notes.txt")
    damaged = bytearray(archive.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    html = upload(bytes(damaged), name)
    assert "the uploaded file: not imported: member &#39;db/facepro.db&#39; fails its checksum" in html
    assert web.ctx.backups.list("local") == []
    html = upload(archive.read_bytes(), name)
    assert f"Imported and verified {name}" in html
    assert [b["name"] for b in web.ctx.backups.list("local")] == [name]
    assert not any((web.ctx.data_dir / "tmp").glob("*"))


# -- password, key, CLI ------------------------------------------------------------------------

def test_first_boot_password_and_secret_key_are_private(data_dir: Path) -> None:
    password = auth.ensure_technician_password(data_dir)
    assert password and len(password) >= 12
    handed_over = data_dir / auth.FIRST_BOOT_PASSWORD_FILE
    assert handed_over.read_text().strip() == password
    for path in (handed_over, data_dir / auth.PASSWORD_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert password not in (data_dir / auth.PASSWORD_FILE).read_text()
    assert auth.verify_password(data_dir, password) and not auth.verify_password(data_dir, password + "x")
    assert auth.ensure_technician_password(data_dir) is None  # only once
    key = auth.load_secret_key(data_dir)
    assert stat.S_IMODE((data_dir / auth.SECRET_KEY_FILE).stat().st_mode) == 0o600
    assert auth.load_secret_key(data_dir) == key and len(key) >= 32


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files for another user")
def test_password_set_by_root_stays_readable_by_the_service_user(data_dir: Path) -> None:
    os.chown(data_dir, 4242, 4242)  # the service's user owns its data dir
    auth.set_password(data_dir, "set by root over ssh")
    info = (data_dir / auth.PASSWORD_FILE).stat()
    assert (info.st_uid, info.st_gid) == (4242, 4242) and stat.S_IMODE(info.st_mode) == 0o600


def test_cli_set_password(write_settings: Any, data_dir: Path) -> None:
    import subprocess

    from tests.conftest import FACEPRO, subprocess_env

    settings = write_settings()
    auth.ensure_technician_password(data_dir)
    run = subprocess.run(FACEPRO + ["--config", str(settings), "web", "set-password"], input="short\n",
                         capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert run.returncode == 2 and "shorter than 10 characters" in run.stderr
    run = subprocess.run(FACEPRO + ["--config", str(settings), "web", "set-password", "--stdin"],
                         input="a much better password\n", capture_output=True, text=True,
                         env=subprocess_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "a much better password" not in run.stdout + run.stderr
    assert auth.verify_password(data_dir, "a much better password")
    assert stat.S_IMODE((data_dir / auth.PASSWORD_FILE).stat().st_mode) == 0o600
    assert not (data_dir / auth.FIRST_BOOT_PASSWORD_FILE).exists()  # the generated one is gone


def test_web_server_component_listens_survives_a_busy_port_and_stops(bare: SimpleNamespace,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    import urllib.error
    import urllib.request

    from edge.web.server import WebServer

    server = WebServer(bare.ctx)
    server.start()
    try:
        assert bare.ctx.web is server and server.port > 0
        with pytest.raises(urllib.error.HTTPError) as excinfo:  # no pipeline: unhealthy
            urllib.request.urlopen(server.url + "api/health", timeout=5)
        assert excinfo.value.code == 503
        assert json.load(excinfo.value)["reasons"] == ["pipeline is not running"]
        # a busy port does not stop the service: it says so and keeps trying in the background
        second = WebServer(bare.ctx, retry_s=0.2)
        second.port = server.port
        with caplog.at_level(logging.ERROR, logger="edge.web.server"):
            second.start()
        assert not second.listening and bare.ctx.web is server
        assert f"web: cannot listen on 127.0.0.1:{server.port} (web.host/web.port)" in caplog.text
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "api/health", timeout=2)
    try:
        deadline = time.monotonic() + 10
        while not second.listening and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.listening and bare.ctx.web is second
        with pytest.raises(urllib.error.HTTPError):  # 503: serving now
            urllib.request.urlopen(second.url + "api/health", timeout=5)
    finally:
        second.stop()
    assert bare.ctx.web is None


def test_successful_logins_do_not_count_toward_the_limit(web: SimpleNamespace) -> None:
    """A technician logging in and out repeatedly is never locked out; failures still are."""
    for _ in range(7):
        token = csrf_from(web.client.get("/login").get_data(as_text=True))
        assert web.client.post("/login", data={"password": PASSWORD, "csrf_token": token}).status_code == 302
        token = csrf_from(web.client.get("/backups").get_data(as_text=True))
        web.client.post("/logout", data={"csrf_token": token})
    token = csrf_from(web.client.get("/login").get_data(as_text=True))
    for _ in range(5):
        assert web.client.post("/login", data={"password": "nope", "csrf_token": token}).status_code == 401
    assert web.client.post("/login", data={"password": "nope", "csrf_token": token}).status_code == 429
