"""Per-camera motion for Home Assistant: the camera device's "Motion" ``binary_sensor``
(:mod:`edge.mqtt.entities_camera`, device class ``motion``, for a motion-gated camera) reads
the retained ``camera/<name>/motion`` topic (``ON``/``OFF``). The gate publishes ``motion`` on the bus when a camera's state changes; the
telemetry tick republishes what the pipeline reports, so a missed change heals itself."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge.mqtt.topics import Topics, topic_level


def motion_topic(topics: Topics, camera: str) -> str:
    return f"{topics.root}/camera/{topic_level(camera)}/motion"


class MotionStates:
    """The retained motion state of each camera, published only when it changes."""

    def __init__(self, topics: Topics, publish: Callable[..., Any], connected: Callable[[], bool]) -> None:
        self.topics = topics
        self._publish = publish
        self._connected = connected
        self._published: dict[str, str] = {}

    def clear(self) -> None:
        """Forget what was published (after a reconnect everything is sent again)."""
        self._published.clear()

    def update(self, camera: str, moving: Any) -> None:
        if moving is None or not self._connected():
            return
        value = "ON" if moving else "OFF"
        if self._published.get(camera) != value:
            self._publish(motion_topic(self.topics, camera), value, qos=1, retain=True)
            self._published[camera] = value

    def changed(self, payload: dict[str, Any]) -> None:
        """A bus ``motion`` message: ``{"name": camera, "motion": bool, ...}``."""
        if payload.get("name") is not None:
            self.update(str(payload["name"]), bool(payload.get("motion")))
