"""Home Assistant entities against a real Mosquitto: every discovery payload checked against
the documented schema (tests/support/ha_schema.py), the retained states a late subscriber
sees, the camera switch, and a person's entities appearing and going away."""
from __future__ import annotations

import json
import time
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import load_settings
from edge.db import connect
from edge.db.faces import remove_user
from edge.mqtt.discovery import applicable_alerts
from edge.mqtt.entities_person import person_config_topics
from edge.mqtt.motion import motion_topic
from edge.mqtt.topics import Topics
from tests.conftest import DEVICE, MEDIA_DIR
from tests.support.context import make_ctx
from tests.support.db import add_person, insert_event
from tests.support.ha_schema import check_discovery
from tests.support.mqtt_hub import ROOT, Hub

TOPICS = Topics("facepro", DEVICE, "homeassistant")
SNAPSHOT = "snapshots/2026-12-04/101010-000-door-alice.jpg"


class Cameras:
    """The pipeline's status and switch interface (no frames: the switch's effect on frames
    is tested on the real pipeline in test_pipeline_pause.py). "door" is motion-gated (its
    gate reports ``motion``), "yard/2" is not (``motion`` None, as the pipeline reports it)."""

    def __init__(self, names: tuple[str, ...] = ("door", "yard/2")) -> None:
        self.names = names
        self.paused: set[str] = set()
        self.calls: list[tuple[str, bool]] = []

    def cameras_status(self) -> list[dict[str, Any]]:
        return [{"name": name, "online": name == "door", "fps_processed": 9.5, "fps_capture": 15.0,
                 "frames_dropped": 3, "recognition_paused": name in self.paused,
                 "motion": False if name == "door" else None} for name in self.names]

    def set_recognition(self, camera: str, enabled: bool) -> bool:
        self.calls.append((camera, enabled))
        (self.paused.discard if enabled else self.paused.add)(camera)
        return enabled

    def reload_gallery(self) -> None:
        pass


def settings_for(write_settings, port: int, name: str = "settings.json", **extra: Any):
    return load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "keepalive_s": 5},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False, "public_url": "http://facepro.local:8080/"},
        "backup": {"schedule": None},
        "cameras": [{"name": "door", "source": "rtsp://127.0.0.1:1/door", "area": "Front door"},
                    {"name": "yard/2", "source": "rtsp://127.0.0.1:1/yard"}],
        **extra,
    }, name=name))


def retained(port: int, wait_for: list[str], settle: float = 0.7) -> dict[str, bytes]:
    """Everything a subscriber arriving now receives as retained, topic -> payload."""
    late = Hub(port).start()
    try:
        for topic in wait_for:
            late.wait_topic(topic)
        time.sleep(settle)
        return {m.topic: m.payload for m in late.messages if m.retain}
    finally:
        late.stop()


def wait_first_round(publisher) -> None:
    """Until the publisher has connected and sent its first round of retained states."""
    deadline = time.monotonic() + 10
    while not (publisher.status()["connected"] and publisher.states.last_state):
        assert time.monotonic() < deadline, "publisher did not connect"
        time.sleep(0.05)
    time.sleep(0.3)


def write_snapshot(data_dir) -> None:
    image = cv2.imread(str(MEDIA_DIR / "obama_and_biden.jpg"))
    image = cv2.resize(image, (1600, 1000))
    path = data_dir / SNAPSHOT
    path.parent.mkdir(parents=True)
    assert cv2.imwrite(str(path), image)


def test_every_discovery_payload_matches_the_documented_schema(write_settings, mosquitto, publisher_factory):
    ctx = make_ctx(settings_for(write_settings, mosquitto.port))
    ctx.pipeline = Cameras()
    for name in ("alice", "bob"):
        add_person(ctx.db_path, name)
    publisher = publisher_factory(ctx)
    wait_first_round(publisher)
    found = retained(mosquitto.port, [TOPICS.discovery_config, TOPICS.camera_discovery_config("door"),
                                      TOPICS.camera_discovery_config("yard_2"), TOPICS.state,
                                      motion_topic(TOPICS, "door"),
                                      *person_config_topics(TOPICS, "alice"), *person_config_topics(TOPICS, "bob")])
    configs = {t: json.loads(p) for t, p in found.items() if t.startswith("homeassistant/") and p}
    problems = [problem for topic, payload in configs.items() for problem in check_discovery(topic, payload)]
    assert problems == []

    entities: dict[str, str] = {}  # unique_id -> platform
    for topic, payload in configs.items():
        for key, component in (payload.get("cmps") or {topic: {**payload, "p": topic.split("/")[1]}}).items():
            if set(component) != {"p"}:  # not a removal
                entities[component.get("unique_id") or key] = component["p"]
    assert len(configs) == 1 + 2 + 3 * 2 + 1  # appliance, 2 cameras, 3 per person, unknown-face trigger
    platforms = sorted(entities.values())
    assert platforms.count("image") == 2 and platforms.count("switch") == 2
    assert platforms.count("device_automation") == 3  # alice, bob, unknown face

    appliance = configs[TOPICS.discovery_config]
    assert appliance["dev"]["configuration_url"] == "http://facepro.local:8080/"
    removals = {key: c["p"] for key, c in appliance["cmps"].items() if set(c) == {"p"}}
    # What earlier releases announced is removed the documented way, platform only. The
    # temperature alert applies only where this host has a sensor psutil reads.
    has_sensor = json.loads(found[TOPICS.state])["temperature_c"] is not None
    expected = {"cpu": "sensor", "camera_door_fps": "sensor", "camera_door_online": "binary_sensor",
                "camera_yard_2_fps": "sensor", "camera_yard_2_online": "binary_sensor",
                "alert_mqtt_disconnected": "binary_sensor", "alert_backup_overdue": "binary_sensor"}
    if not has_sensor:
        expected["alert_high_temperature"] = "binary_sensor"
    assert removals == expected
    cmps = {key: c for key, c in appliance["cmps"].items() if key not in removals}
    assert ("temperature" in cmps) == has_sensor and ("alert_high_temperature" in cmps) == has_sensor
    assert cmps["alert_disk_full"]["name"] == "Disk full" and "enabled_by_default" not in cmps["alert_disk_full"]
    assert {"service_cpu", "system_cpu", "disk_free", "recognition", "command_result", "backup_now"} <= set(cmps)
    assert cmps["disk_free"]["unit_of_measurement"] == "GB" and cmps["disk_free"]["suggested_display_precision"] == 1
    assert "alert_mqtt_disconnected" not in cmps and "alert_backup_overdue" not in cmps  # no schedule
    assert all(c["name"][:1].isupper() for c in cmps.values())
    door = configs[TOPICS.camera_discovery_config("door")]
    assert door["dev"]["suggested_area"] == "Front door"
    assert door["dev"]["via_device"] == appliance["dev"]["identifiers"][0]
    assert "suggested_area" not in configs[TOPICS.camera_discovery_config("yard_2")]["dev"]
    assert {c["name"] for c in door["cmps"].values()} == {"Last recognised", "Snapshot", "Recognition", "FPS",
                                                         "Capture FPS", "Dropped frames", "Online", "Motion"}
    motion = door["cmps"]["motion"]
    assert motion["p"] == "binary_sensor" and motion["device_class"] == "motion"
    assert "entity_category" not in motion and "enabled_by_default" not in motion  # shown, on by default
    assert found[motion["state_topic"]] == b"OFF"
    yard = configs[TOPICS.camera_discovery_config("yard_2")]
    assert "motion" not in yard["cmps"] and len(yard["cmps"]) == 7  # not motion-gated


def test_the_checker_catches_what_home_assistant_rejects():
    """The schema rules can fail: each broken payload gives a problem naming the key."""
    good = {"p": "sensor", "name": "X", "state_topic": "a/b", "unique_id": "u"}
    device = {"dev": {"identifiers": ["d"]}, "o": {"name": "o"}}
    cases = {
        "state_topic": {"p": "sensor", "name": "X", "unique_id": "u"},
        "unit": {**good, "device_class": "data_size", "unit_of_measurement": "GiB/s"},
        "state_class": {**good, "device_class": "timestamp", "state_class": "measurement"},
        "entity_category": {**good, "entity_category": "config"},
        "device_class": {"p": "binary_sensor", "state_topic": "a", "unique_id": "u", "device_class": "person"},
        "documented": {**good, "stat_topic": "a"},
        "unique_id": {"p": "sensor", "state_topic": "a/b"},
        "exactly one of": {"p": "image", "unique_id": "u"},
        "plain topic": {**good, "state_topic": "a/+/b"},
    }
    for expected, component in cases.items():
        problems = check_discovery("homeassistant/device/d/config", {**device, "cmps": {"c": component}})
        assert any(expected in p for p in problems), (expected, problems)
    assert check_discovery("homeassistant/device/d/config", {**device, "cmps": {"c": good}}) == []
    assert check_discovery("homeassistant/device/d/config", {"dev": {"identifiers": ["d"]}, "cmps": {}})
    assert check_discovery("homeassistant/device/d.x/config", {**device, "cmps": {}})


def test_retained_states_switch_and_a_person_removed(write_settings, mosquitto, publisher_factory):
    ctx = make_ctx(settings_for(write_settings, mosquitto.port))
    ctx.pipeline = Cameras()
    for name in ("alice", "bob"):
        add_person(ctx.db_path, name)
    write_snapshot(ctx.data_dir)
    publisher = publisher_factory(ctx)
    hub = Hub(mosquitto.port).start()
    try:
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        insert_event(ctx.db_path, person="alice", camera="door", confidence=0.71, snapshot=SNAPSHOT)
        ctx.bus.publish("event", {})
        hub.wait_topic(TOPICS.camera_snapshot("door"))
    finally:
        hub.stop()

    found = retained(mosquitto.port, [TOPICS.person("alice"), TOPICS.camera_last("door"),
                                      TOPICS.camera_snapshot("door"), TOPICS.camera_recognition("door")])
    alice = json.loads(found[TOPICS.person("alice")])
    assert alice["present"] == "ON" and alice["camera"] == "door" and alice["similarity"] == pytest.approx(0.71)
    bob = json.loads(found[TOPICS.person("bob")])
    assert bob["present"] == "OFF" and bob["last_seen"] is None
    last = json.loads(found[TOPICS.camera_last("door")])
    assert last["person"] == "alice" and last["event_id"] == alice["event_id"] and last["time"] == alice["last_seen"]
    jpeg = found[TOPICS.camera_snapshot("door")]
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and max(picture.shape[:2]) == 640 and len(jpeg) < 150_000
    assert found[TOPICS.camera_recognition("door")] == b"ON"
    assert found[TOPICS.camera_recognition("yard/2")] == b"ON"

    # The switch: OFF pauses, retained; another payload does nothing. A command someone
    # retained runs when it arrives, never again after a restart (checked below).
    hub = Hub(mosquitto.port).start()
    try:
        t0 = time.monotonic()
        hub.publish(TOPICS.camera_recognition_set("door"), "OFF")
        hub.wait_topic(TOPICS.camera_recognition("door"), payload="OFF", after=t0)
        hub.publish(TOPICS.camera_recognition_set("door"), "toggle")
        time.sleep(0.5)
        assert ctx.pipeline.calls == [("door", False)]
        assert retained(mosquitto.port, [TOPICS.camera_recognition("door")])[
            TOPICS.camera_recognition("door")] == b"OFF"
        t1 = time.monotonic()
        hub.publish(TOPICS.camera_recognition_set("door"), "ON", retain=True)
        hub.wait_topic(TOPICS.camera_recognition("door"), payload="ON", after=t1)
        assert ctx.pipeline.calls == [("door", False), ("door", True)]
    finally:
        hub.stop()

    # Bob removed while the service runs: empty retained configs and state.
    conn = connect(ctx.db_path)
    try:
        remove_user(conn, "bob")
    finally:
        conn.close()
    ctx.bus.publish("enroll", {"name": "bob", "action": "remove"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = retained(mosquitto.port, [TOPICS.discovery_config], settle=0.3)
        gone = [*person_config_topics(TOPICS, "bob"), TOPICS.person("bob")]
        if not any(t in left for t in gone):
            break
    assert not any(t in left for t in gone)
    assert all(t in left for t in person_config_topics(TOPICS, "alice"))

    # Alice removed while the service is down: found from her retained state at the next start.
    publisher.stop()
    conn = connect(ctx.db_path)
    try:
        remove_user(conn, "alice")
    finally:
        conn.close()
    wait_first_round(publisher_factory(ctx))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = retained(mosquitto.port, [TOPICS.discovery_config], settle=0.3)
        if not any(t in left for t in person_config_topics(TOPICS, "alice")):
            break
    assert not any(t in left for t in [*person_config_topics(TOPICS, "alice"), TOPICS.person("alice")])
    assert TOPICS.camera_snapshot("door") in left  # the camera keeps its picture
    assert ctx.pipeline.calls == [("door", False), ("door", True)]  # the retained ON did not run again
    hub = Hub(mosquitto.port).start()
    hub.publish(TOPICS.camera_recognition_set("door"), "", retain=True)
    hub.stop()


@pytest.mark.parametrize(("overrides", "expected_in", "expected_out"), [
    ({}, {"low_disk", "high_memory", "backup_failed", "backup_overdue", "camera_offline", "low_fps"},
     {"mqtt_disconnected", "high_temperature"}),
    ({"backup": {"schedule": None}}, {"backup_failed"}, {"backup_overdue"}),
    ({"cameras": []}, {"low_disk"}, {"camera_offline", "low_fps"}),
    ({"alerts": {"low_disk": {"enabled": False, "threshold": 1, "duration_s": 1, "hysteresis": 0}}},
     {"high_memory"}, {"low_disk"}),
    ({"alerts": {"enabled": False}}, set(), {"low_disk", "high_memory"}),
])
def test_alert_entities_only_for_rules_that_can_apply(write_settings, overrides, expected_in, expected_out):
    base = {"cameras": [{"name": "door", "source": "rtsp://127.0.0.1:1/door"}]}
    settings = load_settings(write_settings({**base, **overrides}))
    state = {"cameras": {} if not settings["cameras"] else {"door": {}}, "temperature_c": None}
    names = set(applicable_alerts(settings, state, []))
    assert expected_in <= names and not (expected_out & names)
    # A raised alert always shows, even of a rule this filter would hide.
    assert "high_temperature" in applicable_alerts(settings, state, ["high_temperature"])


def test_a_camera_dropped_from_the_settings_loses_its_device(write_settings, mosquitto, publisher_factory):
    ctx = make_ctx(settings_for(write_settings, mosquitto.port))
    ctx.pipeline = Cameras()
    publisher = publisher_factory(ctx)
    wait_first_round(publisher)
    yard = [TOPICS.camera_discovery_config("yard_2"), TOPICS.camera_recognition("yard/2"),
            TOPICS.camera_status("yard/2")]
    assert all(t in retained(mosquitto.port, yard) for t in yard)
    publisher.stop()

    fewer = make_ctx(settings_for(write_settings, mosquitto.port, name="fewer.json",
                                  cameras=[{"name": "door", "source": "rtsp://127.0.0.1:1/door"}]))
    fewer.pipeline = Cameras(("door",))
    wait_first_round(publisher_factory(fewer))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = retained(mosquitto.port, [TOPICS.discovery_config], settle=0.3)
        if not any(t in left for t in yard):
            break
    assert not any(t in left for t in yard)
    assert TOPICS.camera_discovery_config("door") in left and TOPICS.camera_recognition("door") in left
