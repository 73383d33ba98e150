"""The MQTT publisher in-process against a real Mosquitto, observed by a hub-like subscriber."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from edge.config import load_settings
from edge.mqtt.client import probe_broker
from edge.mqtt.publisher import MqttPublisher
from tests.conftest import DEVICE
from tests.support.context import make_ctx
from tests.support.db import add_person, event_rows, event_uids, insert_event
from tests.support.mqtt_hub import ROOT, Hub, auth_broker, persistent_broker
from tests.support.procs import free_port
from tests.support.waiting import wait_until


def mqtt_settings(write_settings, port: int, **mqtt: Any):
    overrides = {"mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "keepalive_s": 5, **mqtt},
                 "telemetry": {"interval_s": 1}, "web": {"enabled": False}}
    return load_settings(write_settings(overrides))


@pytest.fixture
def hub(mosquitto):
    hub = Hub(mosquitto.port).start()
    yield hub
    hub.stop()


class FakePipeline:
    """Stands in for the camera pipeline's status interface only (no frames)."""

    def __init__(self) -> None:
        self.reloads = 0
        self.door_online = True

    def cameras_status(self) -> list[dict[str, Any]]:
        return [{"name": "door", "online": self.door_online, "fps_processed": 9.5},
                {"name": "yard/2", "online": False, "fps_processed": 0.0}]

    def reload_gallery(self) -> None:
        self.reloads += 1


def test_availability_discovery_states_and_clean_stop(write_settings, mosquitto, hub, publisher_factory):
    ctx = make_ctx(mqtt_settings(write_settings, mosquitto.port))
    ctx.pipeline = FakePipeline()
    publisher = publisher_factory(ctx)
    hub.wait_topic(f"{ROOT}/availability", payload="online")
    assert publisher.status()["connected"] is True
    assert publisher.status()["broker"] == f"mqtt://127.0.0.1:{mosquitto.port}"
    hub.wait_topic(f"{ROOT}/state")  # the first round of retained states is out

    # A hub that subscribes later gets the retained states.
    late = Hub(mosquitto.port).start()
    try:
        avail = late.wait_topic(f"{ROOT}/availability")
        assert avail.text == "online" and avail.retain
        config = late.wait_topic(f"homeassistant/device/{DEVICE}/config")
        assert config.retain
        door = late.wait_topic(f"{ROOT}/camera/door/status")
        assert door.text == "online" and door.retain
        yard = late.wait_topic(f"{ROOT}/camera/yard_2/status")  # '/' never splits a topic level
        assert yard.text == "offline"
    finally:
        late.stop()

    discovery = config.json()
    assert discovery["dev"]["identifiers"] and discovery["dev"]["name"] == "Test device"
    assert discovery["o"]["name"] == "facepro-edge"
    assert discovery["availability_topic"] == f"{ROOT}/availability"
    removed = {key for key, comp in discovery["cmps"].items() if set(comp) == {"p"}}
    assert {"cpu", "camera_door_fps", "camera_door_online", "alert_mqtt_disconnected"} <= removed  # retired
    cmps = {key: comp for key, comp in discovery["cmps"].items() if key not in removed}
    for key, comp in cmps.items():
        assert comp["p"] in ("sensor", "binary_sensor", "event", "button"), key
        assert comp["unique_id"].startswith("test_device_"), key
    assert len({c["unique_id"] for c in cmps.values()}) == len(cmps)
    camera = hub.wait_topic(f"homeassistant/device/{DEVICE}/door/config").json()
    assert camera["dev"]["via_device"] == discovery["dev"]["identifiers"][0]
    assert camera["cmps"]["fps"]["state_topic"] == f"{ROOT}/state"
    assert camera["cmps"]["online"]["device_class"] == "connectivity"
    assert camera["cmps"]["online"]["entity_category"] == "diagnostic"
    assert cmps["system_cpu"]["entity_category"] == "diagnostic" and cmps["system_cpu"]["unit_of_measurement"] == "%"
    assert cmps["service_cpu"]["name"] == "Service CPU"
    assert cmps["disk_free"]["device_class"] == "data_size" and cmps["disk_free"]["unit_of_measurement"] == "GB"
    assert cmps["last_backup"]["device_class"] == "timestamp"
    assert cmps["processing_time"]["unit_of_measurement"] == "ms"
    assert cmps["alert_low_fps"]["device_class"] == "problem"
    assert cmps["alert_low_fps"]["state_topic"] == f"{ROOT}/alert/low_fps"
    assert cmps["recognition"]["p"] == "event"
    assert cmps["recognition"]["event_types"] == ["face_recognized", "face_unknown"]
    assert cmps["backup_now"]["p"] == "button"
    assert cmps["backup_now"]["command_topic"] == f"{ROOT}/command/backup"
    assert "gpu" not in cmps  # no GPU on this machine / no telemetry part reporting one

    state = hub.wait_topic(f"{ROOT}/state").json()
    assert state["cameras"]["door"]["fps"] == 9.5
    assert state["memory_percent"] is not None and state["disk_free_mb"] > 0
    telemetry = hub.wait_topic(f"{ROOT}/telemetry").json()
    assert telemetry["device_id"] == DEVICE and "stages" in telemetry
    assert telemetry["mqtt"]["unpublished"] == 0

    # Camera and alert transitions from the bus.
    t0 = time.monotonic()
    ctx.pipeline.door_online = False
    ctx.bus.publish("camera", {"name": "door", "online": False, "reconnects": 1, "last_frame_at": None})
    hub.wait_topic(f"{ROOT}/camera/door/status", payload="offline", after=t0)
    ctx.bus.publish("alert", {"name": "low_fps", "subject": "door", "state": "raised", "value": 0.5,
                              "message": "door below 2 fps", "at": time.time()})
    raised = hub.wait_topic(f"{ROOT}/alerts", after=t0).json()
    assert raised["name"] == "low_fps" and raised["state"] == "raised" and raised["at"].endswith("Z")
    hub.wait_topic(f"{ROOT}/alert/low_fps", payload="ON", after=t0)
    ctx.bus.publish("alert", {"name": "low_fps", "subject": "door", "state": "cleared", "value": 5.0,
                              "message": "ok", "at": time.time()})
    hub.wait_topic(f"{ROOT}/alert/low_fps", payload="OFF", after=t0)

    # Home Assistant restarting: discovery and states come again.
    t1 = time.monotonic()
    hub.publish("homeassistant/status", "online")
    hub.wait_topic(f"homeassistant/device/{DEVICE}/config", after=t1)
    hub.wait_topic(f"{ROOT}/alert/low_fps", after=t1)
    late = Hub(mosquitto.port).start()  # the transitions were retained
    try:
        assert late.wait_topic(f"{ROOT}/camera/door/status").text == "offline"
        alert = late.wait_topic(f"{ROOT}/alert/low_fps")
        assert alert.text == "OFF" and alert.retain
    finally:
        late.stop()

    # Clean stop: explicit retained offline.
    t2 = time.monotonic()
    publisher.stop()
    hub.wait_topic(f"{ROOT}/availability", payload="offline", after=t2)
    late = Hub(mosquitto.port).start()
    try:
        avail = late.wait_topic(f"{ROOT}/availability")
        assert avail.text == "offline" and avail.retain
    finally:
        late.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_events_arrive_with_all_fields_and_are_marked_on_puback(write_settings, mosquitto, hub,
                                                                 publisher_factory, protocol):
    ctx = make_ctx(mqtt_settings(write_settings, mosquitto.port, protocol=protocol))
    add_person(ctx.db_path, "alice")
    publisher = publisher_factory(ctx)
    hub.wait_topic(f"{ROOT}/availability", payload="online")
    known = insert_event(ctx.db_path, person="alice", camera="door", confidence=0.8712)
    unknown = insert_event(ctx.db_path, person=None, camera="door", confidence=0.31, snapshot=None)
    ctx.bus.publish("event", {"id": unknown})

    hub.wait_until(lambda: len(hub.on(f"{ROOT}/events")) >= 2, what="two events")
    uids = {r["id"]: r["event_uid"] for r in event_rows(ctx.db_path)}
    events = {m.json()["id"]: m for m in hub.on(f"{ROOT}/events")}
    assert set(events) == {uids[known], uids[unknown]}  # the published id is the UUID, not the row id
    first = events[uids[known]].json()
    assert set(first) == {"id", "type", "person", "similarity", "detector_score", "confidence", "camera",
                          "timestamp", "captured_at", "snapshot", "published_at", "age_s", "delayed"}
    assert first["type"] == "face_recognized" and first["person"] == "alice"
    assert first["camera"] == "door" and first["similarity"] == pytest.approx(0.8712)
    assert first["confidence"] == first["similarity"]  # the deprecated alias
    assert first["delayed"] is False and first["captured_at"] == first["timestamp"]
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert first["snapshot"] == "/snapshots/2026/11/26/ev.jpg"
    second = events[uids[unknown]].json()
    assert second["person"] is None and second["snapshot"] is None
    assert second["similarity"] is None and second["detector_score"] == pytest.approx(0.31)

    person = hub.wait_for(lambda m: m.topic == f"{ROOT}/person/alice" and m.json().get("last_seen") is not None,
                          what="alice seen")
    assert person.json() == {"name": "alice", "present": "ON", "camera": "door", "last_seen": first["timestamp"],
                             "timestamp": first["timestamp"], "similarity": first["similarity"],
                             "confidence": first["confidence"], "event_id": first["id"]}
    hub.wait_until(lambda: len(hub.on(f"{ROOT}/recognition")) >= 2, what="two recognitions")
    kinds = {m.json()["event_type"] for m in hub.on(f"{ROOT}/recognition")}
    assert kinds == {"face_recognized", "face_unknown"}

    wait_until(lambda: all(r["published_at"] is not None for r in event_rows(ctx.db_path)), 5, fail=False)
    assert all(r["published_at"] is not None for r in event_rows(ctx.db_path))
    hub.wait_until(lambda: publisher.status()["unpublished"] == 0, what="status shows nothing unpublished")


def test_broker_outage_loses_no_event(tmp_path, write_settings, publisher_factory):
    """Events produced while the broker is down all arrive, in order, once deduped by id."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = persistent_broker(workdir).start()
    hub = Hub(broker.port, (f"{ROOT}/events",), client_id="hub-outage", persistent=True).start()
    try:
        ctx = make_ctx(mqtt_settings(write_settings, broker.port))
        publisher = publisher_factory(ctx)
        hub.wait_until(lambda: publisher.status()["connected"], what="publisher connected")

        produced: list[int] = []

        def produce(n: int, pause: float) -> None:
            for _ in range(n):
                produced.append(insert_event(ctx.db_path, person=f"p{len(produced) % 7}"))
                ctx.bus.publish("event", {"id": produced[-1]})
                time.sleep(pause)

        producer = threading.Thread(target=produce, args=(150, 0.02))
        producer.start()
        time.sleep(0.8)
        first_connect = publisher.status()["last_connected_at"]
        broker.stop()          # outage while events are being produced
        time.sleep(1.5)        # (its length: events keep coming meanwhile)
        wait_until(lambda: publisher.status()["connected"] is False, 10, "the publisher noticed the outage")
        broker.start()
        producer.join()

        uids = event_uids(ctx.db_path)
        row_of = {uid: row for row, uid in uids.items()}
        hub.wait_until(lambda: {row_of.get(m.json()["id"]) for m in hub.on(f"{ROOT}/events")} >= set(produced),
                       timeout=30, what="every produced event delivered")
        received = [row_of[m.json()["id"]] for m in hub.on(f"{ROOT}/events")]
        assert set(received) == set(produced)
        first_seen = list(dict.fromkeys(received))
        assert first_seen == sorted(first_seen), "replay must keep id order"
        wait_until(lambda: all(r["published_at"] is not None for r in event_rows(ctx.db_path)), 10, fail=False)
        assert all(r["published_at"] is not None for r in event_rows(ctx.db_path))
        assert publisher.status()["last_connected_at"] != first_connect  # it really reconnected
    finally:
        hub.stop()
        broker.stop()


def test_outbox_bound_skips_old_and_excess_rows(write_settings, mosquitto, hub, publisher_factory):
    settings = mqtt_settings(write_settings, mosquitto.port, outbox_max_age_s=3600, outbox_max_count=5)
    ctx = make_ctx(settings)
    old = [insert_event(ctx.db_path, created_at="2020-01-01 00:00:00") for _ in range(3)]
    fresh = [insert_event(ctx.db_path) for _ in range(9)]
    publisher = publisher_factory(ctx)
    hub.wait_until(lambda: len(hub.on(f"{ROOT}/events")) >= 5, what="five events")
    time.sleep(0.5)
    row_of = {uid: row for row, uid in event_uids(ctx.db_path).items()}
    received = sorted({row_of[m.json()["id"]] for m in hub.on(f"{ROOT}/events")})
    assert received == fresh[-5:]
    rows = {r["id"]: r for r in event_rows(ctx.db_path)}
    skipped = old + fresh[:4]
    assert all(rows[i]["skipped_at"] is not None and rows[i]["published_at"] is None for i in skipped)
    status = publisher.status()
    assert status["skipped"] == len(skipped) and status["skipped_since_start"] == len(skipped)
    t0 = time.monotonic()
    telemetry = hub.wait_topic(f"{ROOT}/telemetry", after=t0).json()
    assert telemetry["mqtt"]["skipped"] == len(skipped)


def test_commands_are_answered_never_crash(write_settings, mosquitto, hub, publisher_factory):
    ctx = make_ctx(mqtt_settings(write_settings, mosquitto.port, command_cooldown_s=0))
    ctx.pipeline = FakePipeline()
    enrolls: list[dict] = []
    ctx.bus.subscribe("enroll", enrolls.append)
    publisher_factory(ctx)
    hub.wait_topic(f"{ROOT}/availability", payload="online")
    result_topic = f"{ROOT}/command/result"

    def command(action: str, payload: str | bytes) -> dict[str, Any]:
        t0 = time.monotonic()
        hub.publish(f"{ROOT}/command/{action}", payload)
        return hub.wait_topic(result_topic, after=t0).json()

    answer = command("backup", "PRESS")
    assert answer["action"] == "backup" and answer["ok"] is False and "unsupported" in answer["error"]
    t0 = time.monotonic()
    hub.publish(f"{ROOT}/command/enroll_reload", "")  # empty: how a retained message is cleared
    time.sleep(0.5)
    assert not [m for m in hub.on(result_topic) if m.at >= t0] and ctx.pipeline.reloads == 0
    answer = command("enroll_reload", " ")
    assert answer["ok"] is False and "empty payload" in answer["error"]
    answer = command("enroll_reload", "{}")
    assert answer == {"action": "enroll_reload", "ok": True, "result": {"reloaded": True}}
    assert ctx.pipeline.reloads == 1 and enrolls == [{}]
    answer = command("enroll_reload", "{not json")
    assert answer["ok"] is False and "not valid JSON" in answer["error"]
    answer = command("enroll_reload", "[1, 2]")
    assert answer["ok"] is False and "JSON object" in answer["error"]
    answer = command("enroll_reload", b"\xff\xfe")
    assert answer["ok"] is False and "UTF-8" in answer["error"]
    answer = command("self_destruct", "{}")
    assert answer["ok"] is False and "unknown action" in answer["error"]

    # Another device's command topic is not ours: no answer, nothing runs.
    t0 = time.monotonic()
    hub.publish("facepro/other-device/command/enroll_reload", "{}")
    time.sleep(1.0)
    assert not [m for m in hub.on(result_topic) if m.at >= t0]
    assert ctx.pipeline.reloads == 1
    # Still alive and answering.
    assert command("enroll_reload", "{}")["ok"] is True


def test_backup_command_starts_a_real_backup(tmp_path, write_settings, mosquitto, hub, publisher_factory):
    manager_mod = pytest.importorskip("edge.backup.manager", reason="backup manager not landed yet")
    settings = load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 5},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False},
        "backup": {"targets": [{"name": "local", "type": "local", "path": str(tmp_path / "backups")}]},
    }))
    ctx = make_ctx(settings)
    ctx.backups = manager_mod.BackupManager(settings, ctx.device_id, ctx.bus, ctx.metrics)
    publisher_factory(ctx)
    hub.wait_topic(f"{ROOT}/availability", payload="online")
    t0 = time.monotonic()
    hub.publish(f"{ROOT}/command/backup", "{}")
    answer = hub.wait_topic(f"{ROOT}/command/result", after=t0).json()
    assert answer["ok"] is True, answer
    job = answer["result"]["job"]
    wait_until(lambda: ctx.backups.job(job)["state"] != "running", 30, "the backup job", fail=False)
    assert ctx.backups.job(job)["state"] == "ok", ctx.backups.job(job)
    assert ctx.backups.list("local")


def test_no_secret_is_published_or_logged(tmp_path, write_settings, publisher_factory, caplog):
    secret = "s3cr3t-Pa55word"
    workdir = tmp_path / "auth_broker"
    workdir.mkdir()
    broker = auth_broker(workdir, "device", secret).start()
    try:
        hub = Hub(broker.port, ("#",), username="device", password=secret).start()
        settings = mqtt_settings(write_settings, broker.port, username="device", password=secret)
        ctx = make_ctx(settings)
        caplog.set_level(logging.DEBUG)
        publisher_factory(ctx)
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        insert_event(ctx.db_path)
        ctx.bus.publish("event", {})
        hub.wait_topic(f"{ROOT}/events")
        hub.wait_topic(f"{ROOT}/telemetry")
        t0 = time.monotonic()
        hub.publish(f"{ROOT}/command/backup", "{}")
        hub.wait_topic(f"{ROOT}/command/result", after=t0)
        hub.stop()
        assert len(hub.messages) >= 6
        for message in hub.messages:
            assert secret.encode() not in message.payload, message.topic
        assert secret not in caplog.text

        wrong = probe_broker(mqtt_settings(write_settings, broker.port, username="device", password="nope"),
                             DEVICE, timeout_s=3)
        assert wrong["ok"] is False and "refused" in wrong["detail"] and "nope" not in wrong["detail"]
        right = probe_broker(settings, DEVICE, timeout_s=3)
        assert right["ok"] is True and secret not in right["detail"]
    finally:
        broker.stop()


def test_probe_broker_reports_a_dead_broker(write_settings):
    started = time.monotonic()
    result = probe_broker(mqtt_settings(write_settings, free_port()), DEVICE, timeout_s=2)
    assert result["ok"] is False and "127.0.0.1" in result["detail"]
    assert time.monotonic() - started < 10


def test_clean_stop_sends_events_recorded_just_before_it(write_settings, mosquitto, hub, publisher_factory):
    """The service stops the pipeline first; events it recorded last go out before 'offline'."""
    ctx = make_ctx(mqtt_settings(write_settings, mosquitto.port))
    publisher = MqttPublisher(ctx)
    publisher.start()
    hub.wait_topic(f"{ROOT}/availability", payload="online")
    hub.wait_topic(f"{ROOT}/state")
    # Rows written without a bus wake-up, right before the stop: only the final flush sends them.
    ids = [insert_event(ctx.db_path, person=f"p{i}") for i in range(3)]
    publisher.stop()
    hub.wait_topic(f"{ROOT}/availability", payload="offline")  # the broker keeps one client's order
    uids = event_uids(ctx.db_path)
    received = {m.json()["id"] for m in hub.on(f"{ROOT}/events")}
    assert {uids[i] for i in ids} <= received
    assert all(row["published_at"] for row in event_rows(ctx.db_path) if row["id"] in ids)
