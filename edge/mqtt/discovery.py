"""Home Assistant device-based MQTT discovery: one retained config at
``<discovery_prefix>/device/<device_id>/config`` with every component under ``cmps``.

Sensors read the retained ``state`` topic (see snapshot.ha_state); camera and alert binary
sensors read their own retained topics; recognitions are an ``event`` entity; "Back up now"
is a ``button`` whose command topic is the device's ``command/backup``. Every unique_id
starts with the device id, so two devices never share one.
"""
from __future__ import annotations

from typing import Any

import edge
from edge.mqtt.motion import motion_components
from edge.mqtt.topics import Topics, object_id

EVENT_TYPES = ["face_recognized", "face_unknown"]
DIAGNOSTIC = {"entity_category": "diagnostic"}


def _sensor(topics: Topics, key: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"p": "sensor", "name": name, "state_topic": topics.state,
            "value_template": f"{{{{ value_json.{key} }}}}", **extra}


def build_discovery(topics: Topics, device_name: str, state: dict[str, Any],
                    alert_names: list[str]) -> dict[str, Any]:
    """The discovery payload for the current cameras, figures present and alert rules."""
    device_id = topics.device_id
    uid = object_id(device_id)
    cmps: dict[str, dict[str, Any]] = {}

    for cam_id, cam in sorted(state.get("cameras", {}).items()):
        label = cam["name"]
        cmps[f"camera_{cam_id}_fps"] = {
            "p": "sensor", "name": f"{label} fps", "state_topic": topics.state,
            "value_template": f"{{{{ value_json.cameras['{cam_id}'].fps }}}}",
            "unit_of_measurement": "fps", "state_class": "measurement", "icon": "mdi:camera-timer",
            "suggested_display_precision": 1,
        }
        cmps[f"camera_{cam_id}_online"] = {
            "p": "binary_sensor", "name": f"{label} online", "device_class": "connectivity",
            "state_topic": topics.camera_status(label), "payload_on": "online", "payload_off": "offline",
            **DIAGNOSTIC,
        }

    cmps["processing_time"] = _sensor(topics, "processing_ms", "Processing time", device_class="duration",
                                      unit_of_measurement="ms", state_class="measurement",
                                      suggested_display_precision=1, **DIAGNOSTIC)
    cmps["cpu"] = _sensor(topics, "cpu_percent", "CPU", unit_of_measurement="%", state_class="measurement",
                          icon="mdi:cpu-64-bit", **DIAGNOSTIC)
    cmps["memory"] = _sensor(topics, "memory_percent", "Memory", unit_of_measurement="%",
                             state_class="measurement", icon="mdi:memory", **DIAGNOSTIC)
    if state.get("gpu_percent") is not None:
        cmps["gpu"] = _sensor(topics, "gpu_percent", "GPU", unit_of_measurement="%", state_class="measurement",
                              icon="mdi:expansion-card", **DIAGNOSTIC)
    if state.get("temperature_c") is not None:
        cmps["temperature"] = _sensor(topics, "temperature_c", "Temperature", device_class="temperature",
                                      unit_of_measurement="°C", state_class="measurement", **DIAGNOSTIC)
    cmps["disk_free"] = _sensor(topics, "disk_free_mb", "Disk free", device_class="data_size",
                                unit_of_measurement="MB", state_class="measurement", **DIAGNOSTIC)
    cmps["last_backup"] = _sensor(topics, "last_backup", "Last backup", device_class="timestamp", **DIAGNOSTIC)

    for name in alert_names:
        cmps[f"alert_{object_id(name)}"] = {
            "p": "binary_sensor", "name": f"Alert {name.replace('_', ' ')}", "device_class": "problem",
            "state_topic": topics.alert(name), "payload_on": "ON", "payload_off": "OFF", **DIAGNOSTIC,
        }

    cmps["recognition"] = {
        "p": "event", "name": "Recognition", "state_topic": topics.recognition,
        "event_types": list(EVENT_TYPES), "icon": "mdi:face-recognition",
    }
    cmps["backup_now"] = {
        "p": "button", "name": "Back up now", "command_topic": topics.command("backup"),
        "payload_press": "{}", "icon": "mdi:backup-restore", "entity_category": "config",
    }

    cmps.update(motion_components(topics, state))
    for key, component in cmps.items():
        component["unique_id"] = f"{uid}_{key}"

    return {
        "dev": {
            "identifiers": [f"facepro_{uid}"],
            "name": device_name,
            "manufacturer": "FacePro",
            "model": "FacePro Edge",
            "sw_version": edge.__version__,
            "serial_number": device_id,
        },
        "o": {"name": "facepro-edge", "sw": edge.__version__},
        "availability_topic": topics.availability,  # payloads: the defaults, online / offline
        "qos": 1,
        "cmps": cmps,
    }
