"""What an incoming MQTT message asks for, by topic (the publisher acts on the answer).

Kinds: ``ha_online`` (Home Assistant restarted), ``person_state`` (a retained person state,
read back at start to find people removed while the service was down), ``switch_state`` (a
camera's retained recognition switch), ``switch_set`` (a press on it), ``command``; anything
else is ``ignore``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from edge.mqtt.topics import Topics

HA_ONLINE_DEBOUNCE_S = 2.0  # "homeassistant/status online" bursts: one re-publication
HA_ONLINE_MIN_GAP_S = 10.0  # ... and at most one per this long


@dataclass(frozen=True)
class Inbound:
    kind: str
    name: str = ""  # the camera of a switch, the action of a command


def classify(topics: Topics, topic: str, payload: bytes, retained: bool) -> Inbound:
    if topic == topics.ha_status:
        return Inbound("ha_online" if payload.strip().lower() == b"online" else "ignore")
    root = topics.root
    if topic.startswith(root + "/person/"):
        return Inbound("person_state" if retained else "ignore")
    camera = root + "/camera/"
    if topic.startswith(camera) and topic.endswith("/recognition"):
        name = topic[len(camera):-len("/recognition")]
        return Inbound("switch_state", name) if retained and payload else Inbound("ignore")
    if topic.startswith(camera) and topic.endswith("/recognition/set"):
        return Inbound("switch_set", topic[len(camera):-len("/recognition/set")])
    prefix = root + "/command/"
    if topic.startswith(prefix):
        action = topic[len(prefix):]
        if action not in ("result", "event") and "/" not in action:
            return Inbound("command", action)
    return Inbound("ignore")


class Debounce:
    """One re-publication for a burst of Home Assistant "online" messages, and at most one per
    HA_ONLINE_MIN_GAP_S (monotonic clock)."""

    def __init__(self) -> None:
        self.due_at: float | None = None
        self._done_at = -HA_ONLINE_MIN_GAP_S

    def request(self) -> None:
        if self.due_at is None:
            self.due_at = max(time.monotonic() + HA_ONLINE_DEBOUNCE_S, self._done_at + HA_ONLINE_MIN_GAP_S)

    def take(self, now: float) -> bool:
        """True once when the re-publication is due."""
        if self.due_at is None or now < self.due_at:
            return False
        self.due_at = None
        self._done_at = now
        return True
