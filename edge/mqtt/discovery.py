"""Home Assistant device-based MQTT discovery (Home Assistant 2024.11 or later): the appliance
is one retained config at ``<discovery_prefix>/device/<device_id>/config`` with its
components under ``cmps``; each camera is its own device (see entities_camera), each person
has single-component configs (see entities_person).

Sensors read the retained ``state`` topic (see snapshot.ha_state); alert binary sensors read
their own retained topics and exist only for rules that can apply on this device;
recognitions are an ``event`` entity; command outcomes another (``Command result``); "Back up
now" is a ``button``. Every unique_id starts with the device id, so two devices never share one.
"""
from __future__ import annotations

from typing import Any

import edge
from edge.mqtt.entities_camera import appliance_identifier
from edge.mqtt.topics import Topics, object_id

EVENT_TYPES = ["face_recognized", "face_unknown"]
COMMAND_OUTCOMES = ["ok", "failed", "refused"]
DIAGNOSTIC = {"entity_category": "diagnostic"}
ALERT_NAMES = {"low_fps": "Low FPS", "high_latency": "High latency", "high_memory": "High memory",
               "high_temperature": "High temperature", "low_disk": "Low disk", "camera_offline": "Camera offline",
               "backup_failed": "Backup failed", "backup_overdue": "Backup overdue"}
# Rules a Home Assistant entity can never show ON for: with the broker gone, HA sees the
# device unavailable, not this alert.
NEVER_SHOWN = {"mqtt_disconnected"}


def _sensor(topics: Topics, key: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"p": "sensor", "name": name, "state_topic": topics.state,
            "value_template": f"{{{{ value_json.{key} }}}}", **extra}


def applicable_alerts(settings: Any, state: dict[str, Any], active: list[str]) -> list[str]:
    """The alert rules that can raise on this device (plus any alert raised now)."""
    rules = settings.get("alerts", {}) or {}
    names: list[str] = []
    if rules.get("enabled", True):
        for name, rule in rules.items():
            if not isinstance(rule, dict) or not rule.get("enabled", True) or name in NEVER_SHOWN:
                continue
            if name == "backup_overdue" and not settings.get("backup.schedule"):
                continue
            if name in ("camera_offline", "low_fps") and not state.get("cameras"):
                continue
            if name == "high_temperature" and state.get("temperature_c") is None:
                continue
            names.append(name)
    return names + sorted(n for n in active if n not in names and n not in NEVER_SHOWN)


def alert_label(name: str) -> str:
    return ALERT_NAMES.get(name) or name.replace("_", " ").capitalize()


def retired_components(state: dict[str, Any], rule_names: list[str], alert_names: list[str]) -> dict[str, str]:
    """Component key -> platform of what earlier payloads announced and this one does not:
    the per-camera sensors that moved to the camera devices, ``cpu`` (now ``system_cpu``),
    alerts that cannot apply. Sent platform-only, the documented way to remove a component
    in device-based discovery (a key merely left out would stay as an orphan entity)."""
    retired = {"cpu": "sensor"}
    for camera_id in state.get("cameras", {}):
        retired[f"camera_{camera_id}_fps"] = "sensor"
        retired[f"camera_{camera_id}_online"] = "binary_sensor"
    for name in rule_names:
        if name not in alert_names:
            retired[f"alert_{object_id(name)}"] = "binary_sensor"
    return retired


def build_discovery(topics: Topics, device_name: str, state: dict[str, Any], alert_names: list[str],
                    configuration_url: str | None = None,
                    retired: dict[str, str] | None = None) -> dict[str, Any]:
    """The appliance's discovery payload for the figures present and the applicable alerts
    (``retired``: components to remove, see :func:`retired_components`)."""
    uid = topics.node_id
    cmps: dict[str, dict[str, Any]] = {}
    cmps["processing_time"] = _sensor(topics, "processing_ms", "Processing time", device_class="duration",
                                      unit_of_measurement="ms", state_class="measurement",
                                      suggested_display_precision=1, **DIAGNOSTIC)
    cmps["service_cpu"] = _sensor(topics, "service_cpu_percent", "Service CPU", unit_of_measurement="%",
                                  state_class="measurement", suggested_display_precision=0,
                                  icon="mdi:cpu-64-bit", **DIAGNOSTIC)
    cmps["system_cpu"] = _sensor(topics, "cpu_percent", "System CPU", unit_of_measurement="%",
                                 state_class="measurement", suggested_display_precision=0,
                                 icon="mdi:cpu-64-bit", **DIAGNOSTIC)
    cmps["memory"] = _sensor(topics, "memory_percent", "Memory", unit_of_measurement="%",
                             state_class="measurement", suggested_display_precision=0, icon="mdi:memory",
                             **DIAGNOSTIC)
    if state.get("gpu_percent") is not None:
        cmps["gpu"] = _sensor(topics, "gpu_percent", "GPU", unit_of_measurement="%", state_class="measurement",
                              suggested_display_precision=0, icon="mdi:expansion-card", **DIAGNOSTIC)
    if state.get("temperature_c") is not None:
        cmps["temperature"] = _sensor(topics, "temperature_c", "Temperature", device_class="temperature",
                                      unit_of_measurement="°C", state_class="measurement",
                                      suggested_display_precision=0, **DIAGNOSTIC)
    cmps["disk_free"] = _sensor(topics, "disk_free_gb", "Disk free", device_class="data_size",
                                unit_of_measurement="GB", state_class="measurement",
                                suggested_display_precision=1, **DIAGNOSTIC)
    cmps["last_backup"] = _sensor(topics, "last_backup", "Last backup", device_class="timestamp", **DIAGNOSTIC)

    for name in alert_names:
        cmps[f"alert_{object_id(name)}"] = {
            "p": "binary_sensor", "name": alert_label(name), "device_class": "problem",
            "state_topic": topics.alert(name), "payload_on": "ON", "payload_off": "OFF", **DIAGNOSTIC,
        }

    cmps["recognition"] = {
        "p": "event", "name": "Recognition", "state_topic": topics.recognition,
        "event_types": list(EVENT_TYPES), "icon": "mdi:face-recognition",
    }
    cmps["command_result"] = {
        "p": "event", "name": "Command result", "state_topic": topics.command_event,
        "event_types": list(COMMAND_OUTCOMES), "icon": "mdi:console", **DIAGNOSTIC,
    }
    cmps["backup_now"] = {
        "p": "button", "name": "Back up now", "command_topic": topics.command("backup"),
        "payload_press": "{}", "icon": "mdi:backup-restore", "entity_category": "config",
    }

    for key, component in cmps.items():
        component["unique_id"] = f"{uid}_{key}"
    for key, platform in (retired or {}).items():
        cmps.setdefault(key, {"p": platform})

    device: dict[str, Any] = {
        "identifiers": [appliance_identifier(topics)],
        "name": device_name,
        "manufacturer": "FacePro",
        "model": "FacePro Edge",
        "sw_version": edge.__version__,
        "serial_number": topics.device_id,
    }
    if configuration_url:
        device["configuration_url"] = configuration_url
    return {
        "dev": device,
        "o": {"name": "facepro-edge", "sw": edge.__version__},
        "availability_topic": topics.availability,  # payloads: the defaults, online / offline
        "qos": 1,
        "cmps": cmps,
    }
