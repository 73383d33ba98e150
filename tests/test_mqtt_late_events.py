"""Late events notify nobody, whatever made them late, against a real Mosquitto.

A silent link hang (tests/support/relay.py's blackhole: the TCP link still counts as
connected) catches an event already handed to paho; paho re-sends it after the reconnect,
so it leaves fresh and arrives late. The Recognition event entity and the device triggers
must not fire for it. And the device triggers announced by discovery (per person
"recognised", per device "unknown face") are published for fresh events only.
"""
from __future__ import annotations

import json
import time
from typing import Any

from edge.config import load_settings
from edge.mqtt.entities_person import person_config_topics, unknown_trigger
from edge.mqtt.payloads import epoch
from edge.mqtt.topics import Topics
from edge.timestamps import db_text
from tests.conftest import DEVICE
from tests.support.context import make_ctx
from tests.support.db import add_person, event_uids, insert_event
from tests.support.mqtt_hub import ROOT, Hub, Received
from tests.support.relay import Relay
from tests.support.waiting import wait_until

TOPICS = Topics("facepro", DEVICE, "homeassistant")
# An event's created_at is stored to the second (truncated), so a fresh event already counts up
# to 1 s old when it is written: 3 s leaves 2 s for its delivery on a loaded machine.
FRESH_S = 3.0
RECOGNITION = f"{ROOT}/recognition"
ALICE_TRIGGER = TOPICS.trigger("recognised", "alice")
UNKNOWN_TRIGGER = TOPICS.trigger("unknown")


def settings_for(write_settings, port: int):
    return load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "keepalive_s": 5,
                 "event_freshness_s": FRESH_S},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False}}))


def ids(hub: Hub, topic: str) -> list[str]:
    return [m.json()["id"] for m in hub.on(topic) if m.payload]


def notified(hub: Hub, topic: str) -> list[str]:
    """The events ``topic`` notified, in order, each once: a QoS 1 notification whose PUBACK a
    hang swallowed is re-sent after the reconnect (at least once), the same notification again."""
    return list(dict.fromkeys(ids(hub, topic)))


def arrived_late_s(message: Received) -> float:
    """How long after its capture the hub received ``message`` (an event payload)."""
    arrived = time.time() - (time.monotonic() - message.at)
    captured = epoch(message.json()["captured_at"])
    assert captured is not None
    return arrived - captured


def test_an_event_caught_in_a_silent_hang_arrives_late_and_notifies_nobody(write_settings, mosquitto,
                                                                            publisher_factory):
    relay = Relay(mosquitto.port).start()
    hub = Hub(mosquitto.port, (f"{ROOT}/events", RECOGNITION, f"{ROOT}/trigger/#")).start()
    try:
        ctx = make_ctx(settings_for(write_settings, relay.port))
        add_person(ctx.db_path, "alice")

        def event() -> str:
            row = insert_event(ctx.db_path, person="alice")
            ctx.bus.publish("event", {})
            return event_uids(ctx.db_path)[row]

        publisher = publisher_factory(ctx)
        wait_until(lambda: publisher.status()["connected"], 10, "connected")
        before = event()
        hub.wait_until(lambda: before in ids(hub, ALICE_TRIGGER), 10, "the first event's notification")

        connected_at = publisher.status()["last_connected_at"]
        relay.blackhole()
        hung = event()
        wait_until(lambda: publisher.status()["inflight"] == 1 and relay.dead_links, 5,
                   "the event handed to paho and dropped by the relay")
        assert publisher.status()["connected"]  # nothing has noticed the hang yet
        relay.restore()  # the hung link stays dead; the reconnect after keepalive gets through
        wait_until(lambda: publisher.status()["last_connected_at"] != connected_at, 30,
                   "the hang noticed (keepalive) and a reconnect")
        hub.wait_until(lambda: hung in ids(hub, f"{ROOT}/events"), 10, "the re-sent event")
        after = event()
        hub.wait_until(lambda: after in ids(hub, ALICE_TRIGGER), 10, "the fresh event's notification")
        time.sleep(0.5)  # anything else that would fire has arrived by now

        late = next(m for m in hub.on(f"{ROOT}/events") if m.json()["id"] == hung)
        late_s = arrived_late_s(late)
        print(f"event caught in the hang arrived {late_s:.1f} s after capture "
              f"(payload delayed={late.json()['delayed']}, age_s={late.json()['age_s']})")
        assert late_s > FRESH_S
        assert notified(hub, RECOGNITION) == [before, after]
        assert notified(hub, ALICE_TRIGGER) == [before, after]
        assert ids(hub, UNKNOWN_TRIGGER) == []
    finally:
        hub.stop()
        relay.stop()


def test_device_triggers_fire_for_fresh_events_only(write_settings, mosquitto, publisher_factory):
    ctx = make_ctx(settings_for(write_settings, mosquitto.port))
    add_person(ctx.db_path, "alice")
    hub = Hub(mosquitto.port).start()
    try:
        publisher_factory(ctx)
        alice_config, unknown_config = person_config_topics(TOPICS, "alice")[2], unknown_trigger(TOPICS)[0]
        configs: dict[str, Any] = {}
        for topic in (alice_config, unknown_config):
            configs[topic] = json.loads(hub.wait_topic(topic).payload)
        # The topics Home Assistant listens on are the ones discovery announced.
        assert configs[alice_config]["topic"] == ALICE_TRIGGER
        assert configs[alice_config]["subtype"] == "alice"
        assert configs[unknown_config]["topic"] == UNKNOWN_TRIGGER

        old = db_text(time.time() - 60)  # recorded a minute ago (as during an outage): late
        rows = {"old alice": insert_event(ctx.db_path, person="alice", created_at=old),
                "old unknown": insert_event(ctx.db_path, person=None, created_at=old),
                "alice": insert_event(ctx.db_path, person="alice"),
                "unknown": insert_event(ctx.db_path, person=None)}
        ctx.bus.publish("event", {})
        uids = {name: event_uids(ctx.db_path)[row] for name, row in rows.items()}
        hub.wait_until(lambda: set(ids(hub, f"{ROOT}/events")) >= set(uids.values()), 10, "all four events")
        hub.wait_until(lambda: ids(hub, UNKNOWN_TRIGGER), 10, "the unknown-face trigger")
        time.sleep(0.5)

        delivered = {m.json()["id"]: m.json() for m in hub.on(f"{ROOT}/events")}
        assert [delivered[uids[n]]["delayed"] for n in rows] == [True, True, False, False]
        assert ids(hub, ALICE_TRIGGER) == [uids["alice"]]
        assert ids(hub, UNKNOWN_TRIGGER) == [uids["unknown"]]
        trigger = hub.on(ALICE_TRIGGER)[0]
        assert not trigger.retain and trigger.json()["person"] == "alice"  # a retained trigger would re-fire
        assert ids(hub, RECOGNITION) == [uids["alice"], uids["unknown"]]
    finally:
        hub.stop()
