"""Each camera as its own Home Assistant device (``via_device`` the appliance), so it can sit
in its own area (``cameras[].area`` becomes ``suggested_area``).

Its entities: "Last recognised" (sensor: the person's name or ``unknown``; camera,
similarity, event id and time as attributes), "Snapshot" (``image`` from retained JPEG bytes
on ``image_topic``), "Recognition" (switch: pause/resume recognition on this camera, state
retained), "FPS", "Capture FPS", "Dropped frames", "Online" and, when its detector is
motion-gated, "Motion".
"""
from __future__ import annotations

from typing import Any

import edge
from edge.mqtt.motion import motion_topic
from edge.mqtt.topics import Topics

DIAGNOSTIC = {"entity_category": "diagnostic"}


def appliance_identifier(topics: Topics) -> str:
    return f"facepro_{topics.node_id}"


def label(name: str) -> str:
    """A display name with a capital first letter ("door" -> "Door")."""
    text = str(name)
    return text[:1].upper() + text[1:]


def camera_discovery(topics: Topics, camera_id: str, camera: dict[str, Any], area: str | None,
                     availability: str) -> dict[str, Any]:
    """The device-discovery payload of one camera (``topics.camera_discovery_config``)."""
    name = str(camera["name"])
    uid = f"{topics.node_id}_{camera_id}"
    figures = f"value_json.cameras['{camera_id}']"
    last = topics.camera_last(name)
    cmps: dict[str, dict[str, Any]] = {
        "last_recognised": {
            "p": "sensor", "name": "Last recognised", "state_topic": last,
            "value_template": "{{ value_json.person }}", "json_attributes_topic": last,
            "icon": "mdi:account-eye",
        },
        "snapshot": {
            "p": "image", "name": "Snapshot", "image_topic": topics.camera_snapshot(name),
            "content_type": "image/jpeg",
        },
        "recognition": {
            "p": "switch", "name": "Recognition", "command_topic": topics.camera_recognition_set(name),
            "state_topic": topics.camera_recognition(name), "payload_on": "ON", "payload_off": "OFF",
            "icon": "mdi:face-recognition",
        },
        "fps": {
            "p": "sensor", "name": "FPS", "state_topic": topics.state,
            "value_template": f"{{{{ {figures}.fps }}}}", "unit_of_measurement": "fps",
            "state_class": "measurement", "suggested_display_precision": 1, "icon": "mdi:camera-timer",
        },
        "capture_fps": {
            "p": "sensor", "name": "Capture FPS", "state_topic": topics.state,
            "value_template": f"{{{{ {figures}.fps_capture }}}}", "unit_of_measurement": "fps",
            "state_class": "measurement", "suggested_display_precision": 1, "icon": "mdi:camera",
            **DIAGNOSTIC,
        },
        "dropped_frames": {
            "p": "sensor", "name": "Dropped frames", "state_topic": topics.state,
            "value_template": f"{{{{ {figures}.frames_dropped }}}}", "state_class": "total_increasing",
            "icon": "mdi:camera-off", **DIAGNOSTIC,
        },
        "online": {
            "p": "binary_sensor", "name": "Online", "device_class": "connectivity",
            "state_topic": topics.camera_status(name), "payload_on": "online", "payload_off": "offline",
            **DIAGNOSTIC,
        },
    }
    if camera.get("motion") is not None:  # only a motion-gated camera has a motion state
        cmps["motion"] = {
            "p": "binary_sensor", "name": "Motion", "device_class": "motion",
            "state_topic": motion_topic(topics, name), "payload_on": "ON", "payload_off": "OFF",
        }
    for key, component in cmps.items():
        component["unique_id"] = f"{uid}_{key}"
    device: dict[str, Any] = {
        "identifiers": [f"{appliance_identifier(topics)}_{camera_id}"],
        "name": label(name),
        "manufacturer": "FacePro",
        "model": "FacePro Edge camera",
        "via_device": appliance_identifier(topics),
    }
    if area:
        device["suggested_area"] = str(area)
    return {"dev": device, "o": {"name": "facepro-edge", "sw": edge.__version__},
            "availability_topic": availability, "qos": 1, "cmps": cmps}
