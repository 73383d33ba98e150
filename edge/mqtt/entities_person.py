"""Per enrolled person: a presence ``binary_sensor`` (seen within
``recognition.presence_timeout_s``), a "Last seen" timestamp sensor with the camera as an
attribute, and a "person recognised" device trigger. Plus the device's "unknown face" trigger.

These are single-component discovery topics (``<prefix>/<platform>/<node>/<object>/config``)
attached to the appliance by its identifier, so a person's entities come and go alone: an
enrolment publishes them, a removal publishes an empty retained config on each (the
documented way to delete a discovered entity) and clears the person's retained state.
"""
from __future__ import annotations

import hashlib
from typing import Any

from edge.mqtt.entities_camera import appliance_identifier
from edge.mqtt.topics import Topics, object_id


def person_key(name: str) -> str:
    """A stable object id for ``name``: readable part plus a hash, so "Ann B" and "ann_b" differ."""
    return f"{object_id(name)}_{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def _trigger(topics: Topics, topic: str, subtype: str) -> dict[str, Any]:
    return {"automation_type": "trigger", "topic": topic, "type": "face_recognised" if subtype != "unknown_face"
            else "face_detected", "subtype": subtype, "qos": 1,
            "device": {"identifiers": [appliance_identifier(topics)]}}


def person_configs(topics: Topics, name: str, availability: str) -> dict[str, dict[str, Any]]:
    """Discovery topic -> payload for one person's entities and trigger."""
    key = person_key(name)
    uid = f"{topics.node_id}_person_{key}"
    state = topics.person(name)
    device = {"identifiers": [appliance_identifier(topics)]}
    common = {"availability_topic": availability, "device": device, "qos": 1}
    return {
        topics.entity_config("binary_sensor", f"{key}_presence"): {
            **common, "name": f"{name} present", "unique_id": f"{uid}_presence", "device_class": "presence",
            "state_topic": state, "value_template": "{{ value_json.present }}",
            "payload_on": "ON", "payload_off": "OFF", "json_attributes_topic": state,
            "json_attributes_template": "{{ {'camera': value_json.camera, 'last_seen': value_json.last_seen}"
                                        " | tojson }}",
        },
        topics.entity_config("sensor", f"{key}_last_seen"): {
            **common, "name": f"{name} last seen", "unique_id": f"{uid}_last_seen", "device_class": "timestamp",
            "state_topic": state, "value_template": "{{ value_json.last_seen }}",
            "json_attributes_topic": state,
            "json_attributes_template": "{{ {'camera': value_json.camera, 'similarity': value_json.similarity,"
                                        " 'event_id': value_json.event_id} | tojson }}",
            "icon": "mdi:account-clock",
        },
        topics.entity_config("device_automation", f"{key}_recognised"): _trigger(
            topics, topics.trigger("recognised", name), name),
    }


def unknown_trigger(topics: Topics) -> tuple[str, dict[str, Any]]:
    return (topics.entity_config("device_automation", "unknown_face"),
            _trigger(topics, topics.trigger("unknown"), "unknown_face"))


def person_config_topics(topics: Topics, name: str) -> list[str]:
    """The discovery topics :func:`person_configs` publishes (emptied on removal)."""
    key = person_key(name)
    return [topics.entity_config("binary_sensor", f"{key}_presence"),
            topics.entity_config("sensor", f"{key}_last_seen"),
            topics.entity_config("device_automation", f"{key}_recognised")]
