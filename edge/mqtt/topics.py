"""Topic names under ``<base_topic>/<device_id>/`` and the Home Assistant topics.

Names that come from data (people, cameras, alerts) become a single topic level:
wildcards and level separators are replaced so a name can never reach another topic.
"""
from __future__ import annotations

import hashlib
import re

_BAD_LEVEL = re.compile(r"[+#/\x00-\x1f\x7f]")
_NOT_ID = re.compile(r"[^a-z0-9_]+")


def topic_level(name: object) -> str:
    """``name`` as one safe topic level: no '+', '#', '/', control characters, never empty."""
    text = _BAD_LEVEL.sub("_", str(name)).strip()
    return text or "_"


def object_id(name: object) -> str:
    """A Home Assistant object id (lower-case letters, digits, '_') for ``name``.

    Names that differ only in characters the id cannot hold get a short hash suffix from
    :func:`unique_object_ids`; this function alone is only the readable part.
    """
    text = _NOT_ID.sub("_", str(name).lower()).strip("_")
    return text or "x"


def unique_object_ids(names: list[str]) -> dict[str, str]:
    """Map each name to an object id; colliding ids get a hash of the original name."""
    ids: dict[str, str] = {}
    seen: dict[str, int] = {}
    for name in names:
        base = object_id(name)
        seen[base] = seen.get(base, 0) + 1
    for name in names:
        base = object_id(name)
        if seen[base] > 1:
            base = f"{base}_{hashlib.sha256(str(name).encode()).hexdigest()[:6]}"
        ids[name] = base
    return ids


class Topics:
    def __init__(self, base_topic: str, device_id: str, discovery_prefix: str) -> None:
        self.root = f"{base_topic.strip('/')}/{topic_level(device_id)}"
        self.discovery_prefix = discovery_prefix.strip("/")
        self.device_id = device_id

    @property
    def availability(self) -> str:
        return f"{self.root}/availability"

    @property
    def events(self) -> str:
        return f"{self.root}/events"

    @property
    def recognition(self) -> str:
        """Home Assistant ``event`` entity state topic (payload carries ``event_type``)."""
        return f"{self.root}/recognition"

    @property
    def state(self) -> str:
        """Retained flat state the Home Assistant sensors read."""
        return f"{self.root}/state"

    @property
    def telemetry(self) -> str:
        return f"{self.root}/telemetry"

    @property
    def alerts(self) -> str:
        return f"{self.root}/alerts"

    def alert(self, name: str) -> str:
        return f"{self.root}/alert/{topic_level(name)}"

    def person(self, name: str) -> str:
        return f"{self.root}/person/{topic_level(name)}"

    def camera_status(self, name: str) -> str:
        return f"{self.root}/camera/{topic_level(name)}/status"

    def camera_last(self, name: str) -> str:
        """Retained: the camera's last recognition (the "Last recognised" sensor)."""
        return f"{self.root}/camera/{topic_level(name)}/last"

    def camera_snapshot(self, name: str) -> str:
        """Retained JPEG bytes of the camera's latest event snapshot (an MQTT ``image``)."""
        return f"{self.root}/camera/{topic_level(name)}/snapshot"

    def camera_recognition(self, name: str) -> str:
        """Retained ON/OFF: recognition running on the camera (the pause switch's state)."""
        return f"{self.root}/camera/{topic_level(name)}/recognition"

    def camera_recognition_set(self, name: str) -> str:
        return f"{self.root}/camera/{topic_level(name)}/recognition/set"

    @property
    def camera_recognition_filter(self) -> str:
        return f"{self.root}/camera/+/recognition/set"

    @property
    def camera_recognition_state_filter(self) -> str:
        return f"{self.root}/camera/+/recognition"

    @property
    def person_filter(self) -> str:
        return f"{self.root}/person/+"

    def trigger(self, kind: str, name: str = "") -> str:
        """Device-trigger topics: ``trigger/recognised/<person>`` and ``trigger/unknown``."""
        return f"{self.root}/trigger/{kind}" + (f"/{topic_level(name)}" if name else "")

    @property
    def command_event(self) -> str:
        """Command outcomes as a Home Assistant ``event`` entity (ok, failed, refused)."""
        return f"{self.root}/command/event"

    def command(self, action: str) -> str:
        return f"{self.root}/command/{topic_level(action)}"

    @property
    def command_filter(self) -> str:
        return f"{self.root}/command/+"

    @property
    def command_result(self) -> str:
        return f"{self.root}/command/result"

    @property
    def probe(self) -> str:
        return f"{self.root}/probe"

    @property
    def discovery_config(self) -> str:
        return f"{self.discovery_prefix}/device/{topic_level(self.device_id)}/config"

    @property
    def node_id(self) -> str:
        return object_id(self.device_id)

    # Discovery topics keep the device id as a whole topic level (``<prefix>/<component>/
    # <device id>/<object>/config``), so a broker ACL ``pattern write homeassistant/+/%u/#``
    # confines each device to its own (Mosquitto substitutes %u only as a whole level).

    def camera_discovery_config(self, camera_id: str) -> str:
        """A camera's own Home Assistant device (``via_device`` the appliance)."""
        return f"{self.discovery_prefix}/device/{topic_level(self.device_id)}/{camera_id}/config"

    def entity_config(self, platform: str, object_name: str) -> str:
        """A single-component discovery topic (people and device triggers: removed by an
        empty retained payload)."""
        return f"{self.discovery_prefix}/{platform}/{topic_level(self.device_id)}/{object_name}/config"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"
