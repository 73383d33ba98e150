"""A data disk that fills up (issue 13, item 6): a real tmpfs filled to ENOSPC.

In-process, the real EventSink and EventStore on a migrated database inside the tmpfs: the
full disk is detected once, events are held in memory (bounded; the excess counted as lost)
and written in order, marked published, once space returns; health, status, telemetry and
the ``disk_full`` alert say so. End to end, ``facepro run`` with a looping clip, MQTT and the
web server: events keep reaching the broker from memory, ``/api/health`` and the retained
states report ``disk_full``, one log line per change and no traceback, nothing sent twice.
Needs root for ``mount -t tmpfs`` (../shared/TESTING.md); skipped otherwise.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bus import EventBus
from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.events import EventStore
from edge.db.migrate import migrate_database
from edge.events import EventSink
from edge.telemetry.alerts import AlertManager, signals_from_snapshot
from edge.telemetry.component import Telemetry
from edge.telemetry.storage import DiskFullState
from edge.web import status as status_mod
from edge.web.app import create_app
from tests.conftest import CLIP, write_settings_file
from tests.support.db import event_rows
from tests.support.mqtt_hub import ROOT, Hub
from tests.support.procs import free_port
from tests.support.service import start_service, stop_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

FRAME = np.full((120, 160, 3), 90, np.uint8)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem answers ENOSPC; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):  # big blocks, then the last bytes
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def unknown_face(sink: EventSink, clock: float) -> list[Any]:
    return sink.handle("door", FRAME, [None], [0.0], [0.9], clock=clock, captured_at=1_800_000_000.0 + clock)


def make_sink(disk: Path, tmp_path: Path, **storage_args: Any) -> tuple[Any, EventSink, list[dict[str, Any]]]:
    settings = load_settings(write_settings_file(tmp_path / "settings.json", disk / "data",
                                                 {"mqtt": {"enabled": True}}))
    migrate_database(settings)
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe("event", seen.append)
    storage = DiskFullState(settings.data_dir, bus=bus, retry_s=0, **storage_args)
    sink = EventSink(EventStore(settings.db_path), settings.data_dir, bus=bus, cooldown_s=0, min_free_mb=0,
                     storage=storage, publish_unstored=True)
    return settings, sink, seen


def test_a_full_disk_holds_events_and_writes_them_when_space_returns(small_disk: Path, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    settings, sink, seen = make_sink(small_disk, tmp_path)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    ctx.storage = sink.storage
    client = create_app(ctx).test_client()  # its key file is written while there is space
    for i in range(3):
        assert unknown_face(sink, float(i))[0].id is not None
    filler = fill(small_disk)

    caplog.set_level(logging.INFO, logger="edge")
    caplog.clear()
    held = [unknown_face(sink, 10.0 + i)[0] for i in range(40)]  # no exception, frame after frame
    assert all(event.id is None for event in held) and sink.storage.full
    assert [p["stored"] for p in seen[3:]] == [False] * 40 and all(p["id"] is None for p in seen[3:])
    status = sink.storage.status()
    assert status["disk_full"] and status["events_pending"] == 40 and status["events_lost"] == 0
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1 and "data disk full" in records[0].getMessage(), [r.getMessage() for r in records]

    health = client.get("/api/health")
    assert health.status_code == 503 and health.get_json()["disk_full"] is True
    assert any(reason.startswith("disk_full:") for reason in health.get_json()["reasons"])
    assert status_mod.collect_status(ctx)["storage"]["data"]["disk_full"] is True
    snapshot = Telemetry(ctx, persist=False).sample()
    assert snapshot["storage"]["disk_full"] is True
    alerts = AlertManager(settings["alerts"])
    raised = alerts.evaluate(signals_from_snapshot(snapshot))
    assert [(t["name"], t["state"]) for t in raised] == [("disk_full", "raised")]

    filler.unlink()
    caplog.clear()
    after = unknown_face(sink, 100.0)[0]
    assert after.id is not None and not sink.storage.full
    rows = event_rows(settings.db_path)
    assert len(rows) == 44 and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    late = rows[3:43]
    assert [r["created_at"] for r in late] == sorted(r["created_at"] for r in late)
    assert all(r["published_at"] is not None for r in late)  # sent from memory: the outbox skips them
    # the id they were sent by is the one they are stored with
    assert [r["event_uid"] for r in late] == [p["uid"] for p in seen[3:43]]
    assert rows[43]["published_at"] is None and rows[43]["id"] == after.id
    assert [r.getMessage() for r in caplog.records if "has space again" in r.getMessage()] != []
    assert sink.storage.status()["events_written_late"] == 40
    cleared = alerts.evaluate(signals_from_snapshot(Telemetry(ctx, persist=False).sample()))
    assert [(t["name"], t["state"]) for t in cleared] == [("disk_full", "cleared")]
    assert client.get("/api/health").get_json().get("disk_full") is None


def test_events_beyond_the_memory_bound_are_counted_as_lost(small_disk: Path, tmp_path: Path) -> None:
    settings, sink, _seen = make_sink(small_disk, tmp_path, max_held=5)
    filler = fill(small_disk)
    for i in range(12):
        unknown_face(sink, float(i))
    assert sink.storage.status()["events_pending"] == 5 and sink.storage.status()["events_lost"] == 7
    filler.unlink()
    sink.retry_pending()  # housekeeping: written without waiting for a new event
    assert not sink.storage.full
    rows = event_rows(settings.db_path)
    assert len(rows) == 5  # the five newest held; the seven oldest were counted as lost
    assert sink.storage.status() | {"since": None} == {
        "disk_full": False, "since": None, "reason": None, "failed_writes": sink.storage.failures,
        "events_pending": 0, "events_lost": 7, "events_written_late": 5}


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:  # not listening yet
        return 0, {}


def test_the_service_keeps_sending_events_while_the_disk_is_full(small_disk: Path, tmp_path: Path,
                                                                  mosquitto: Any) -> None:
    port = free_port()
    config = write_settings_file(tmp_path / "settings.json", small_disk / "data", {
        "cameras": [{"name": "stage", "source": str(CLIP), "loop": True, "rate": "native"}],
        "recognition": {"cooldown_s": 0.5},
        "events": {"min_free_mb": 0},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 5},
        "telemetry": {"interval_s": 1, "sample_interval_s": 0.5},
        "backup": {"schedule": None},
        "web": {"host": "127.0.0.1", "port": port, "public_read": True},
    })
    settings = load_settings(config)
    hub = Hub(mosquitto.port).start()
    log_file = tmp_path / "service.log"  # outside the full disk
    with open(log_file, "w") as log:
        proc = start_service(config, stdout=log, stderr=subprocess.STDOUT)
    health_url = f"http://127.0.0.1:{port}/api/health"
    try:
        wait_until(lambda: any(m.json().get("id") for m in hub.on(f"{ROOT}/events")), 60, "a stored event")
        wait_until(lambda: get_json(health_url)[0] == 200, 30, "the web server")
        filler = fill(small_disk)
        wait_until(lambda: get_json(health_url)[1].get("disk_full"), 30, "disk_full in /api/health")
        assert get_json(health_url)[0] == 503
        wait_until(lambda: len([m for m in hub.on(f"{ROOT}/events") if m.json().get("stored") is False]) >= 3,
                   30, "three events sent from memory")
        wait_until(lambda: any(m.json().get("disk_full") for m in hub.on(f"{ROOT}/state")), 20,
                   "disk_full in the retained state")
        wait_until(lambda: any(m.text == "ON" for m in hub.on(f"{ROOT}/alert/disk_full")), 20, "the alert")
        status = get_json(f"http://127.0.0.1:{port}/api/status")[1]
        assert status["storage"]["data"]["disk_full"] is True

        filler.unlink()
        wait_until(lambda: get_json(health_url) == (200, {"status": "ok"}), 30, "health ok again")
        wait_until(lambda: any(m.text == "OFF" for m in hub.on(f"{ROOT}/alert/disk_full")), 20, "alert cleared")
        memory = [m.json() for m in hub.on(f"{ROOT}/events") if m.json().get("stored") is False]
    finally:
        output = stop_process(proc, signal.SIGTERM)
        hub.stop()
    output = log_file.read_text() + output
    assert proc.returncode == 0, output
    assert output.count("data disk full") == 1, output
    assert output.count("has space again") == 1, output
    assert "Traceback" not in output and "frame failed" not in output, output
    rows = {r["event_uid"]: r for r in event_rows(settings.db_path)}
    sent_ids = [m.json()["id"] for m in hub.on(f"{ROOT}/events") if m.json().get("stored") is not False]
    memory_ids = {m["id"] for m in memory}
    assert len(memory) >= 3
    assert len(memory_ids) == len(memory) and None not in memory_ids  # each sent with its own UUID
    # every event sent from memory is stored now, under the id it was sent with, as published
    # (an event recorded just as space returned may have its snapshot: the row waits for the retry)
    assert memory_ids <= rows.keys()
    assert all(rows[uid]["published_at"] is not None for uid in memory_ids)
    assert sum(rows[uid]["snapshot_path"] is None for uid in memory_ids) >= 3
    assert not memory_ids & set(sent_ids)  # and not sent a second time


def test_the_web_app_starts_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    """First boot with no space: no key file, no password file, yet the status page answers."""
    from edge.web import auth

    settings, sink, _seen = make_sink(small_disk, tmp_path)
    fill(small_disk)
    assert auth.ensure_technician_password(settings.data_dir) is None
    assert not (settings.data_dir / auth.FIRST_BOOT_PASSWORD_FILE).exists()
    ctx = ServiceContext(settings=settings, device_id="test-device")
    ctx.storage = sink.storage
    client = create_app(ctx).test_client()
    health = client.get("/api/health")  # answers (no pipeline runs in this test)
    assert health.status_code == 503 and health.get_json()["reasons"] == ["pipeline is not running"]
    assert "No technician password is set" in client.get("/login").get_data(as_text=True)
