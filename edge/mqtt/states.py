"""The retained states the publisher keeps on its broker: each person's last sighting,
camera availability, alert switches, the telemetry snapshot and Home Assistant discovery.

Runs on the publisher's worker thread only; it publishes through the publisher's own
``publish`` so secrets are redacted in one place.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from edge.context import ServiceContext, ask
from edge.db.outbox import EventOutbox
from edge.mqtt.discovery import build_discovery
from edge.mqtt.motion import MotionStates
from edge.mqtt.payloads import event_message, iso_utc, now_iso, person_state
from edge.mqtt.snapshot import ha_state, minimal_telemetry
from edge.mqtt.topics import Topics

Publish = Callable[..., Any]


class RetainedStates:
    def __init__(self, ctx: ServiceContext, topics: Topics, publish: Publish, connected: Callable[[], bool],
                 outbox: EventOutbox, outbox_numbers: Callable[[], dict[str, int | None]]) -> None:
        self.ctx = ctx
        self.topics = topics
        self.discovery_enabled = bool(ctx.settings.get("mqtt.discovery", True))
        self._publish = publish
        self._connected = connected
        self._outbox = outbox
        self._outbox_numbers = outbox_numbers
        self._people: dict[str, dict[str, Any]] = {}
        self._camera_states: dict[str, str] = {}
        self._alerts_active: dict[str, set[str]] = {}
        self._last_discovery = ""
        self.motion = MotionStates(topics, publish, connected)

    def republish_all(self) -> None:
        """Discovery and every retained state, as after a (re)connect."""
        self._last_discovery = ""
        self._camera_states.clear()
        self.motion.clear()
        if not self._people:
            self._people = self._outbox_people()
        for person, state in self._people.items():
            self._publish(self.topics.person(person), state, qos=1, retain=True)
        active = ask(self.ctx.alerts, lambda a: a.active(), None, "alerts.active()")
        if isinstance(active, list):
            self._alerts_active = {}
            for alert in active:
                if isinstance(alert, dict) and alert.get("name"):
                    self._alerts_active.setdefault(str(alert["name"]), set()).add(str(alert.get("subject") or ""))
        for name in self._alert_names():
            self._publish(self.topics.alert(name), "ON" if self._alerts_active.get(name) else "OFF",
                          qos=1, retain=True)
        self.publish_telemetry()

    def person_seen(self, event: dict[str, Any]) -> None:
        """An acknowledged event: its person's retained last-seen state."""
        person = event.get("person")
        if person:
            state = person_state(event)
            self._people[person] = state
            self._publish(self.topics.person(person), state, qos=1, retain=True)

    def _outbox_people(self) -> dict[str, dict[str, Any]]:
        people: dict[str, dict[str, Any]] = {}
        for row in self._outbox.last_seen_people():
            event = event_message(row, self.ctx.data_dir)
            if event["person"]:
                people[event["person"]] = person_state(event)
        return people

    def _alert_names(self) -> list[str]:
        rules = self.ctx.settings.get("alerts", {}) or {}
        names = [key for key, value in rules.items() if isinstance(value, dict)]
        return names + sorted(n for n in self._alerts_active if n not in names)

    def publish_telemetry(self) -> None:
        outbox = self._outbox_numbers()
        snapshot = ask(self.ctx.telemetry, lambda t: t.snapshot(), None, "telemetry.snapshot()")
        if isinstance(snapshot, dict):
            snapshot = dict(snapshot)
            snapshot.setdefault("mqtt", outbox)
        else:
            snapshot = minimal_telemetry(self.ctx, outbox)
        self._publish(self.topics.telemetry, snapshot, qos=0)
        state = ha_state(self.ctx, snapshot)
        if self.discovery_enabled:
            discovery = json.dumps(build_discovery(self.topics, self.ctx.settings["device.name"], state,
                                                   self._alert_names()), separators=(",", ":"))
            if discovery != self._last_discovery:
                self._publish(self.topics.discovery_config, discovery, qos=1, retain=True)
                self._last_discovery = discovery
        self._publish(self.topics.state, state, qos=1, retain=True)
        for camera in state["cameras"].values():
            self._set_camera_state(str(camera["name"]), bool(camera["online"]))
            self.motion.update(str(camera["name"]), camera.get("motion"))

    def _set_camera_state(self, name: str, online: bool) -> None:
        value = "online" if online else "offline"
        if self._camera_states.get(name) != value and self._connected():
            self._publish(self.topics.camera_status(name), value, qos=1, retain=True)
            self._camera_states[name] = value

    def camera_changed(self, payload: dict[str, Any]) -> None:
        if payload.get("name") is None:
            return
        self._set_camera_state(str(payload["name"]), bool(payload.get("online")))

    def alert_changed(self, payload: dict[str, Any]) -> None:
        name = payload.get("name")
        if not name:
            return
        name = str(name)
        subject = str(payload.get("subject") or "")
        raised = str(payload.get("state", "")).lower() in ("raised", "on", "active")
        subjects = self._alerts_active.setdefault(name, set())
        (subjects.add if raised else subjects.discard)(subject)
        message = {
            "name": name, "subject": payload.get("subject"), "state": "raised" if raised else "cleared",
            "value": payload.get("value"), "message": payload.get("message"),
            "at": iso_utc(payload.get("at")) or now_iso(),
        }
        if self._connected():
            self._publish(self.topics.alerts, message, qos=1)
            self._publish(self.topics.alert(name), "ON" if subjects else "OFF", qos=1, retain=True)
