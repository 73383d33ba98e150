"""Presence and last seen from acknowledged events, on the clock: ON while the newest sighting
is younger than the timeout, OFF once it passes; late events never roll a state back. And a
camera paused on purpose raises no low-FPS alert."""
from __future__ import annotations

import json
from typing import Any

from edge.mqtt.people_states import PeopleStates
from edge.mqtt.topics import Topics
from edge.telemetry.alerts import signals_from_snapshot

TOPICS = Topics("facepro", "dev-1", "homeassistant")
T0 = 1_800_000_000.0


def iso(t: float) -> str:
    from edge.timestamps import iso_utc

    return str(iso_utc(t))


class Broker:
    """What was published, by topic (the real broker round trip is in test_mqtt_ha_entities)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        assert retain
        self.sent.append((topic, payload))

    def last(self, topic: str) -> Any:
        return next(p for t, p in reversed(self.sent) if t == topic)


def event(person: str, at: float, camera: str = "door") -> dict[str, Any]:
    return {"id": f"uid-{at}", "person": person, "camera": camera, "captured_at": iso(at), "timestamp": iso(at),
            "similarity": 0.7}


def test_presence_times_out_and_late_events_do_not_roll_back():
    broker = Broker()
    people = PeopleStates(TOPICS, broker.publish, presence_timeout_s=60, discovery=True)
    people.sync(["Ann", "Bo"])
    assert broker.last(TOPICS.person("Bo"))["present"] == "OFF"
    people.seen(event("Ann", T0), now=T0 + 1)
    assert broker.last(TOPICS.person("Ann"))["present"] == "ON"
    people.tick(now=T0 + 59)
    assert broker.last(TOPICS.person("Ann"))["present"] == "ON"
    people.tick(now=T0 + 61)
    state = broker.last(TOPICS.person("Ann"))
    assert state["present"] == "OFF" and state["last_seen"] == iso(T0)
    count = len(broker.sent)
    people.tick(now=T0 + 120)
    assert len(broker.sent) == count  # OFF once, not every tick

    people.seen(event("Ann", T0 + 200, "yard"), now=T0 + 201)
    people.seen(event("Ann", T0 + 100, "door"), now=T0 + 202)  # late (a replay after an outage)
    state = broker.last(TOPICS.person("Ann"))
    assert state["camera"] == "yard" and state["present"] == "ON"

    people.seen(event("Zed", T0 + 300), now=T0 + 300)  # not enrolled (removed): no state
    assert all(topic != TOPICS.person("Zed") for topic, _ in broker.sent)

    people.sync(["Bo"])  # Ann removed: empty retained configs and state
    removed = [t for t, p in broker.sent[-4:] if p == ""]
    assert TOPICS.person("Ann") in removed and len(removed) == 4

    people.retained_state(json.dumps({"name": "Cy", "present": "OFF"}).encode())  # left from before
    assert broker.sent[-1] == (TOPICS.person("Cy"), "")


def test_a_paused_camera_raises_no_low_fps_alert():
    snapshot = {"cameras": [{"name": "door", "online": True, "fps_processed": 0.0, "recognition_paused": True},
                            {"name": "yard", "online": True, "fps_processed": 0.0}]}
    signals = {(rule, subject): value for rule, subject, value in signals_from_snapshot(snapshot)}
    assert signals[("low_fps", "door")] is None and signals[("low_fps", "yard")] == 0.0
