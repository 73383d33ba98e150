"""The retained states the publisher keeps on its broker: people (presence, last seen),
cameras (own devices, last recognised, snapshot, recognition switch, availability), alert
switches, the telemetry snapshot and Home Assistant discovery.

Runs on the publisher's worker thread only; it publishes through the publisher's own
``publish`` so secrets are redacted in one place.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

from edge.context import ServiceContext, ask
from edge.db.faces import people_names
from edge.db.outbox import EventOutbox
from edge.mqtt.camera_states import CameraStates
from edge.mqtt.discovery import applicable_alerts, build_discovery, retired_components
from edge.mqtt.motion import MotionStates
from edge.mqtt.payloads import event_message, iso_utc, now_iso
from edge.mqtt.people_states import PeopleStates
from edge.mqtt.snapshot import ha_state, minimal_telemetry
from edge.mqtt.topics import Topics

Publish = Callable[..., Any]


def configuration_url(ctx: ServiceContext) -> str | None:
    """The status page's address for Home Assistant's "Visit" link (``web.public_url`` or
    the host name and port the web server listens on)."""
    settings = ctx.settings
    url = settings.get("web.public_url")
    if url:
        # Home Assistant refuses the whole device config for another scheme.
        return str(url) if str(url).startswith(("http://", "https://")) else None
    if not settings.get("web.enabled", True):
        return None
    port = int(settings.get("web.port") or 0)
    if ctx.web is not None:
        try:
            port = int(str(ctx.web.url).rsplit(":", 1)[1].split("/", 1)[0])
        except (IndexError, ValueError):
            pass
    if port <= 0:
        return None
    host = str(settings.get("web.host") or "")
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{port}/"


class RetainedStates:
    def __init__(self, ctx: ServiceContext, topics: Topics, publish: Publish, connected: Callable[[], bool],
                 outbox: EventOutbox, outbox_numbers: Callable[[], dict[str, int | None]]) -> None:
        self.ctx = ctx
        self.topics = topics
        settings = ctx.settings
        self.discovery_enabled = bool(settings.get("mqtt.discovery", True))
        self._publish = publish
        self._connected = connected
        self._outbox = outbox
        self._outbox_numbers = outbox_numbers
        self._camera_states: dict[str, str] = {}
        self._alerts_active: dict[str, set[str]] = {}
        self._last_discovery = ""
        areas = {str(c["name"]): c.get("area") for c in settings.get("cameras", []) or []}
        self.cameras = CameraStates(topics, publish, ctx.data_dir, areas,
                                    int(settings.get("mqtt.image_max_side", 640) or 640))
        self.people = PeopleStates(topics, publish, float(settings.get("recognition.presence_timeout_s", 300)),
                                   self.discovery_enabled)
        self._people_restored = False
        self.last_state: dict[str, Any] = {}
        self.motion = MotionStates(topics, publish, connected)

    def republish_all(self) -> None:
        """Discovery and every retained state, as after a (re)connect."""
        self._last_discovery = ""
        self._camera_states.clear()
        self.motion.clear()
        self.cameras.reset()
        self.people.reset()
        self.sync_people()
        active = ask(self.ctx.alerts, lambda a: a.active(), None, "alerts.active()")
        if isinstance(active, list):
            self._alerts_active = {}
            for alert in active:
                if isinstance(alert, dict) and alert.get("name"):
                    self._alerts_active.setdefault(str(alert["name"]), set()).add(str(alert.get("subject") or ""))
        self.publish_telemetry()
        for name in self._alert_names(self.last_state):
            self._publish(self.topics.alert(name), "ON" if self._alerts_active.get(name) else "OFF",
                          qos=1, retain=True)

    def sync_people(self) -> None:
        """Discovered people follow the enrolled ones (polled: enrolment may be another process)."""
        if not self._people_restored:
            # Their last sightings first: sync publishes "not present" for anyone not seen yet,
            # so a restart would flip a present person ON -> OFF -> ON (a false arrival).
            self._people_restored = True
            self.people.restore([event_message(row, self.ctx.data_dir) for row in self._outbox.last_seen_people()])
        self.people.sync(people_names(self._outbox.conn))

    def event_acked(self, event: dict[str, Any], snapshot_path: str | None) -> None:
        """An acknowledged event: the person's presence and last seen, the camera's last
        recognition and snapshot."""
        person = event.get("person")
        if person and person not in (self.people.enrolled or set()):
            self.sync_people()  # enrolled a moment ago, before the next poll
        self.people.seen(event)
        self.cameras.event_acked(event, snapshot_path)

    def tick(self) -> None:
        self.people.tick()

    def _alert_names(self, state: dict[str, Any]) -> list[str]:
        return applicable_alerts(self.ctx.settings, state, [n for n, s in self._alerts_active.items() if s])

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
        self.last_state = state
        if self.discovery_enabled:
            alerts = self._alert_names(state)
            rules = [n for n, r in (self.ctx.settings.get("alerts", {}) or {}).items() if isinstance(r, dict)]
            discovery = json.dumps(build_discovery(self.topics, self.ctx.settings["device.name"], state, alerts,
                                                   configuration_url(self.ctx),
                                                   retired_components(state, rules, alerts)),
                                   separators=(",", ":"))
            if discovery != self._last_discovery:
                self._publish(self.topics.discovery_config, discovery, qos=1, retain=True)
                self._last_discovery = discovery
            self.cameras.publish_discovery(state["cameras"])
        self._publish(self.topics.state, state, qos=1, retain=True)
        self.cameras.publish_switches(state["cameras"])
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
