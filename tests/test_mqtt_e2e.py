"""End to end: ``facepro run`` processes the shared clip; its events reach a hub over MQTT."""
from __future__ import annotations

import signal
import subprocess
from datetime import datetime

import pytest

from edge.config import load_settings
from tests.conftest import CLIP, MEDIA_DIR, MODELS_DIR
from tests.support.cli import run_cli
from tests.support.db import event_rows
from tests.support.mqtt_hub import ROOT, Hub
from tests.support.service import start_service, stop_process

pytestmark = pytest.mark.skipif(not (CLIP.exists() and MODELS_DIR.is_dir()), reason="shared clip/models missing")


def test_events_from_the_shared_clip_arrive_with_all_fields(write_settings, mosquitto):
    config = write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 5},
        "cameras": [{"name": "stage", "source": str(CLIP), "rate": "native", "loop": True}],
        "telemetry": {"interval_s": 1}, "web": {"enabled": False}, "backup": {"schedule": None},
    })
    settings = load_settings(config)
    enrolled = run_cli(config, "enroll", "Lin-Manuel Miranda", str(MEDIA_DIR / "lin-manuel-miranda.png"),
                       timeout=120)
    assert enrolled.returncode == 0, enrolled.stderr

    hub = Hub(mosquitto.port).start()
    proc = start_service(config, stderr=subprocess.STDOUT)
    try:
        hub.wait_until(lambda: any(m.json()["person"] == "Lin-Manuel Miranda" for m in hub.on(f"{ROOT}/events"))
                       and any(m.json()["person"] is None for m in hub.on(f"{ROOT}/events")),
                       timeout=90, what="a recognised and an unknown face event")
        person = hub.wait_for(lambda m: m.topic == f"{ROOT}/person/Lin-Manuel Miranda" and m.payload
                              and m.json()["last_seen"] is not None, what="Lin-Manuel Miranda seen")
        assert person.json()["present"] == "ON"
        last = hub.wait_topic(f"{ROOT}/camera/stage/last")
        assert last.json()["camera"] == "stage"
        picture = hub.wait_topic(f"{ROOT}/camera/stage/snapshot")
        assert picture.payload[:2] == b"\xff\xd8" and len(picture.payload) < 200_000
        hub.wait_until(lambda: len(hub.on(f"{ROOT}/recognition")) >= 2, what="HA recognition events")
    finally:
        output = stop_process(proc, signal.SIGTERM)
        hub.stop()
    assert proc.returncode == 0, output

    rows = {r["event_uid"]: r for r in event_rows(settings.db_path)}
    events = [m.json() for m in hub.on(f"{ROOT}/events")]
    assert events
    for event in events:
        assert set(event) == {"id", "type", "person", "similarity", "detector_score", "confidence", "camera",
                              "timestamp", "captured_at", "snapshot", "published_at", "age_s", "delayed"}
        assert event["id"] in rows
        assert 0.0 < event["detector_score"] <= 1.0
        if event["person"] is not None:
            assert event["similarity"] == event["confidence"]
        else:
            assert event["similarity"] is None and event["detector_score"] == event["confidence"]
        assert event["camera"] == "stage"
        assert event["type"] in ("face_recognized", "face_unknown")
        assert (event["person"] is None) == (event["type"] == "face_unknown")
        assert 0.0 <= event["confidence"] <= 1.0
        assert event["timestamp"].endswith("Z")
        datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert event["snapshot"].startswith("/snapshots/")
        assert (settings.data_dir / "snapshots" / event["snapshot"][len("/snapshots/"):]).is_file()
    assert person.json()["camera"] == "stage"
    kinds = {m.json()["event_type"] for m in hub.on(f"{ROOT}/recognition")}
    assert kinds == {"face_recognized", "face_unknown"}
    # No gap: every row up to the newest received one arrived and was marked published
    # (rows the pipeline records during shutdown, after MQTT stopped, wait for the next start).
    by_row = {r["id"]: r for r in rows.values()}
    newest = max(rows[e["id"]]["id"] for e in events)
    assert {rows[e["id"]]["id"] for e in events} == {i for i in by_row if i <= newest}
    assert all(r["published_at"] is not None for i, r in by_row.items() if i <= newest)
