"""A restore started from the status page runs as a backup job: progress on the job route and
the bus, the result on the page; and the one check of an ``include`` choice."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from edge.backup.archive import parse_includes
from edge.backup.errors import BackupError
from edge.backup.manager import BackupManager
from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.migrator import Migrator
from edge.web import auth
from edge.web.app import create_app
from tests.support.web import login

PASSWORD = "correct horse battery"


def test_parse_includes_is_the_one_check() -> None:
    assert parse_includes("settings, db") == ["db", "settings"]
    assert parse_includes(["faces", "db", "faces"]) == ["db", "faces"]
    for bad, message in (("db,bogus", "--include: 'bogus' is not one of db, faces, settings"),
                         ("", "--include: choose at least one of db, faces, settings"),
                         ([], "--include: choose at least one of db, faces, settings"),
                         ([1], "--include: expected a list of db, faces, settings")):
        with pytest.raises(BackupError) as caught:
            parse_includes(bad)  # type: ignore[arg-type]
        assert str(caught.value) == message and caught.value.exit_code == 2
    with pytest.raises(BackupError, match="^include: 'x' is not one of"):
        parse_includes(["x"], label="include")


@pytest.fixture
def site(tmp_path: Path, write_settings: Any, data_dir: Path) -> dict[str, Any]:
    settings = load_settings(write_settings({
        "web": {"host": "127.0.0.1", "port": 0},
        "mqtt": {"enabled": False},
        "backup": {"schedule": None, "targets": [{"name": "local", "type": "local",
                                                  "path": str(tmp_path / "archives")}]},
    }), env={})
    with Migrator(settings.db_path) as migrator:
        migrator.migrate()
    ctx = ServiceContext(settings=settings, device_id="test-device")
    ctx.backups = BackupManager(settings, ctx.device_id, bus=ctx.bus)
    records: list[dict[str, Any]] = []
    ctx.bus.subscribe("backup", records.append)
    auth.set_password(data_dir, PASSWORD)
    client = create_app(ctx).test_client()
    name = ctx.backups.create(include=["db", "settings"])["name"]
    return {"ctx": ctx, "client": client, "token": login(client, PASSWORD), "name": name, "records": records}


def test_web_restore_is_a_job_with_progress(site: dict[str, Any]) -> None:
    client, manager, name = site["client"], site["ctx"].backups, site["name"]
    form = {"csrf_token": site["token"], "target": "local", "name": name, "confirm": "yes", "poll": "1"}
    response = client.post("/backups/restore", data=form)
    assert response.status_code == 303 and "/backups?job=" in response.headers["Location"]
    job_id = response.headers["Location"].split("job=")[1]
    page = client.get(f"/backups?job={job_id}").get_data(as_text=True)
    assert "Restore in progress" in page and 'data-kind="restore"' in page

    job = manager.wait(job_id, 60)
    assert job["state"] == "ok" and job["progress"] == 1.0 and job["kind"] == "restore", job
    assert job["result"]["restored"] == ["db", "settings"]
    polled = client.get(f"/api/backups/jobs/{job_id}").get_json()
    assert polled["state"] == "ok" and polled["archive"] == name
    mine = [r for r in site["records"] if r["job"] == job_id]
    assert mine[0]["state"] == "running" and mine[-1]["state"] == "ok" and mine[-1]["kind"] == "restore"
    done = client.get(f"/backups?done={job_id}").get_data(as_text=True)
    assert f"Restored {name} (db, settings)." in done


def test_web_restore_failure_is_reported_both_ways(site: dict[str, Any]) -> None:
    client, manager, name = site["client"], site["ctx"].backups, site["name"]
    form = {"csrf_token": site["token"], "target": "local", "name": name, "confirm": "yes", "include": ["faces"]}
    # Without JavaScript the request waits for the job and answers with its outcome.
    page = client.post("/backups/restore", data=form, follow_redirects=True).get_data(as_text=True)
    assert "restore failed:" in page and "does not contain faces" in page

    response = client.post("/backups/restore", data=dict(form, poll="1"))
    job_id = response.headers["Location"].split("job=")[1]
    assert manager.wait(job_id, 60)["state"] == "failed"
    done = client.get(f"/backups?done={job_id}").get_data(as_text=True)
    assert "Restore failed:" in done and "does not contain faces" in done


def test_web_wizard_lists_security_changes_and_restores_only_when_exactly_those_are_confirmed(
        site: dict[str, Any]) -> None:
    """Issue 13, item 2: an archive whose settings switch web.public_read on."""
    ctx, client = site["ctx"], site["client"]
    source = ctx.settings.source
    original = source.read_text()
    doc = json.loads(original)
    doc["web"]["public_read"] = True
    source.write_text(json.dumps(doc))
    name = ctx.backups.create(include=["settings"])["name"]
    source.write_text(original)

    page = html.unescape(client.get("/backups/confirm", query_string={
        "action": "restore", "target": "local", "name": name}).get_data(as_text=True))
    assert 'id="security-changes"' in page
    assert "web.public_read (reading the status page without logging in): false -> true" in page
    digest = ctx.backups.preview_restore(name, target="local")["digest"]
    assert f'name="accept_security" value="{digest}" required' in page

    form = {"csrf_token": site["token"], "target": "local", "name": name, "confirm": "yes"}
    refused = client.post("/backups/restore", data=form, follow_redirects=True).get_data(as_text=True)
    assert "restore refused (not confirmed)" in html.unescape(refused)
    assert source.read_text() == original
    stale = client.post("/backups/restore", data=dict(form, accept_security="0123456789abcdef"),
                        follow_redirects=True).get_data(as_text=True)
    assert "differ from the changes confirmed" in html.unescape(stale) and source.read_text() == original
    done = client.post("/backups/restore", data=dict(form, accept_security=digest), follow_redirects=True)
    assert f"Restored {name} (settings)." in done.get_data(as_text=True)
    assert json.loads(source.read_text())["web"]["public_read"] is True
