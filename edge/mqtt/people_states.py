"""Per-person retained states and entities: presence, last seen, the recognised trigger.

``sync(names)`` makes the discovered people match the enrolled ones: a new name gets its
configs, a removed one empty retained configs and an emptied state topic. People removed
while the service was down are found from their retained ``person/<name>`` states (which
carry the name), read back when the publisher subscribes to them on connect.

Presence is ON while the person's newest sighting is younger than
``recognition.presence_timeout_s``; :meth:`tick` turns it OFF when that passes.
Runs on the publisher's worker thread only.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from edge.mqtt.entities_person import person_config_topics, person_configs, unknown_trigger
from edge.mqtt.payloads import epoch, person_state
from edge.mqtt.topics import Topics

Publish = Callable[..., Any]


class PeopleStates:
    def __init__(self, topics: Topics, publish: Publish, presence_timeout_s: float, discovery: bool) -> None:
        self.topics = topics
        self._publish = publish
        self.timeout_s = float(presence_timeout_s)
        self.discovery = discovery
        self.enrolled: set[str] | None = None  # None: not read yet
        self._announced: set[str] = set()
        self._last: dict[str, dict[str, Any]] = {}  # name -> newest event
        self._present: dict[str, bool] = {}

    def reset(self) -> None:
        self._announced.clear()

    def sync(self, names: list[str]) -> None:
        enrolled = set(names)
        gone = (self.enrolled or set()) - enrolled
        self.enrolled = enrolled
        if self.discovery:
            topic, payload = unknown_trigger(self.topics)
            if "" not in self._announced:
                self._publish(topic, payload, qos=1, retain=True)
                self._announced.add("")
            for name in sorted(enrolled - self._announced):
                for topic, config in person_configs(self.topics, name, self.topics.availability).items():
                    self._publish(topic, config, qos=1, retain=True)
                self._announced.add(name)
                if name not in self._last:  # never seen: a state still, so a later removal finds it
                    self._publish(self.topics.person(name), person_state({"person": name}, False),
                                  qos=1, retain=True)
        for name in sorted(gone):
            self.remove(name)

    def remove(self, name: str) -> None:
        """Delete a person's entities (empty retained configs) and retained state."""
        for topic in person_config_topics(self.topics, name):
            self._publish(topic, "", qos=1, retain=True)
        self._publish(self.topics.person(name), "", qos=1, retain=True)
        self._announced.discard(name)
        self._last.pop(name, None)
        self._present.pop(name, None)

    def retained_state(self, payload: bytes) -> None:
        """A retained ``person/<name>`` state read back from the broker: if that person is no
        longer enrolled, remove their entities."""
        if self.enrolled is None or not payload:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str) and name and name not in self.enrolled:
            self.remove(name)

    def seen(self, event: dict[str, Any], now: float | None = None) -> None:
        """An acknowledged event of a recognised person (older ones never roll it back)."""
        name = event.get("person")
        if not name or (self.enrolled is not None and name not in self.enrolled):
            return
        previous = self._last.get(name)
        if previous is not None and str(previous.get("captured_at")) > str(event.get("captured_at")):
            return
        self._last[name] = event
        self._send(name, now)

    def restore(self, events: list[dict[str, Any]], now: float | None = None) -> None:
        """The newest event per person from the database, after a restart."""
        for event in events:
            if event.get("person") and event["person"] not in self._last:
                self._last[event["person"]] = event
        for name in list(self._last):
            self._send(name, now)

    def tick(self, now: float | None = None) -> None:
        """Turn presence OFF for everyone not seen within the timeout."""
        for name, present in list(self._present.items()):
            if present and not self._is_present(name, now):
                self._send(name, now)

    def _is_present(self, name: str, now: float | None) -> bool:
        seen = epoch(self._last[name].get("captured_at"))
        return seen is not None and (time.time() if now is None else now) - seen <= self.timeout_s

    def _send(self, name: str, now: float | None) -> None:
        present = self._is_present(name, now)
        self._present[name] = present
        self._publish(self.topics.person(name), person_state(self._last[name], present), qos=1, retain=True)
