"""Home Assistant's documented MQTT discovery schema, as data, and a checker.

Sources (Home Assistant documentation, checked against HA core's validators):
* https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery (topics, device-based
  discovery since 2024.11: ``dev``, ``o`` with ``name``, ``cmps`` each with ``p`` and a
  ``unique_id``; a platform-only component removes it; an empty payload removes a config)
* https://www.home-assistant.io/integrations/sensor.mqtt/, binary_sensor.mqtt, switch.mqtt,
  button.mqtt, event.mqtt, image.mqtt, device_trigger.mqtt (required keys, options)
* https://developers.home-assistant.io/docs/core/entity/sensor/ (device classes, units per
  class, state classes; homeassistant/components/sensor/const.py DEVICE_CLASS_UNITS),
  .../binary-sensor/, .../switch/, .../button/, .../event/ (device classes)
* https://developers.home-assistant.io/docs/core/entity/#generic-properties (entity
  categories; sensors and binary sensors may not be "config": sensor/binary_sensor
  validate_sensor_entity_category in HA core's MQTT platform)
"""
from __future__ import annotations

import re
from typing import Any

COMMON = {"availability", "availability_mode", "availability_template", "availability_topic", "device",
          "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
          "json_attributes_template", "json_attributes_topic", "name", "object_id", "default_entity_id",
          "payload_available", "payload_not_available", "platform", "qos", "unique_id"}

PLATFORMS: dict[str, dict[str, Any]] = {
    "sensor": {
        "required": {"state_topic"},
        "options": {"device_class", "expire_after", "force_update", "last_reset_value_template", "options",
                    "suggested_display_precision", "state_class", "state_topic", "unit_of_measurement",
                    "value_template"},
        "categories": {"diagnostic"},
    },
    "binary_sensor": {
        "required": {"state_topic"},
        "options": {"device_class", "expire_after", "force_update", "off_delay", "payload_off", "payload_on",
                    "state_topic", "value_template"},
        "categories": {"diagnostic"},
        "device_classes": {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                           "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
                           "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
                           "smoke", "sound", "tamper", "update", "vibration", "window"},
    },
    "switch": {
        "required": {"command_topic"},
        "options": {"command_template", "command_topic", "device_class", "optimistic", "payload_off",
                    "payload_on", "retain", "state_off", "state_on", "state_topic", "value_template"},
        "categories": {"config", "diagnostic"},
        "device_classes": {"outlet", "switch"},
    },
    "button": {
        "required": {"command_topic"},
        "options": {"command_template", "command_topic", "device_class", "payload_press", "retain"},
        "categories": {"config", "diagnostic"},
        "device_classes": {"identify", "restart", "update"},
    },
    "event": {
        "required": {"state_topic", "event_types"},
        "options": {"device_class", "event_types", "state_topic", "value_template"},
        "categories": {"diagnostic"},
        "device_classes": {"button", "doorbell", "motion"},
    },
    "image": {
        "one_of": {"image_topic", "url_topic"},
        "options": {"content_type", "image_encoding", "image_topic", "url_template", "url_topic"},
        "categories": {"config", "diagnostic"},
    },
    "device_automation": {
        "required": {"automation_type", "topic", "type", "subtype", "device"},
        "options": {"automation_type", "device", "payload", "platform", "qos", "subtype", "topic", "type",
                    "value_template"},
        "no_common": True,
    },
}

NON_NUMERIC_SENSOR = {"date", "enum", "timestamp"}
SENSOR_UNITS: dict[str, set[str | None]] = {  # DEVICE_CLASS_UNITS for the classes this device may use
    "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB",
                  "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"},
    "duration": {"d", "h", "min", "s", "ms"},
    "temperature": {"°C", "°F", "K"},
    "timestamp": {None}, "date": {None}, "enum": {None},
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
               "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device"}
TOPIC_LEVEL = re.compile(r"^[a-zA-Z0-9_-]+$")


def check_device(device: Any, where: str) -> list[str]:
    if not isinstance(device, dict):
        return [f"{where}: device must be a mapping"]
    problems = [f"{where}: device key {key!r} is not documented" for key in device if key not in DEVICE_KEYS]
    if not device.get("identifiers") and not device.get("connections"):
        problems.append(f"{where}: device needs identifiers or connections")
    url = device.get("configuration_url")
    if url is not None and not re.match(r"^(https?|homeassistant)://", str(url)):
        problems.append(f"{where}: configuration_url {url!r} is not http(s):// or homeassistant://")
    return problems


def check_component(platform: str, config: dict[str, Any], where: str, *, in_device: bool = False) -> list[str]:
    """Problems with one entity's config for ``platform`` (empty list: valid)."""
    rules = PLATFORMS.get(platform)
    if rules is None:
        return [f"{where}: platform {platform!r} is not one this checker knows"]
    problems: list[str] = []
    allowed = set(rules["options"]) | (set() if rules.get("no_common") else COMMON) | {"p"}
    problems += [f"{where}: key {key!r} is not a documented {platform} option" for key in config
                 if key not in allowed]
    problems += [f"{where}: required key {key!r} missing" for key in rules.get("required", ())
                 if key not in config and not (in_device and key == "device")]
    if "one_of" in rules and len(rules["one_of"] & set(config)) != 1:
        problems.append(f"{where}: exactly one of {sorted(rules['one_of'])} is required")
    if in_device and platform != "device_automation" and not config.get("unique_id"):
        problems.append(f"{where}: a device-based discovery component needs a unique_id")
    category = config.get("entity_category")
    if category is not None and category not in rules.get("categories", set()):
        problems.append(f"{where}: entity_category {category!r} not allowed for {platform}")
    device_class = config.get("device_class")
    if platform == "sensor":
        unit = config.get("unit_of_measurement")
        if device_class is not None:
            if device_class not in SENSOR_UNITS:
                problems.append(f"{where}: sensor device_class {device_class!r} not covered by this checker")
            elif unit not in SENSOR_UNITS[device_class]:
                problems.append(f"{where}: unit {unit!r} not allowed for device_class {device_class!r}")
        state_class = config.get("state_class")
        if state_class is not None:
            if state_class not in STATE_CLASSES:
                problems.append(f"{where}: state_class {state_class!r} unknown")
            if device_class in NON_NUMERIC_SENSOR:
                problems.append(f"{where}: a {device_class} sensor cannot have a state_class")
        precision = config.get("suggested_display_precision")
        if precision is not None and (not isinstance(precision, int) or precision < 0):
            problems.append(f"{where}: suggested_display_precision must be a non-negative int")
    elif device_class is not None and device_class not in rules.get("device_classes", set()):
        problems.append(f"{where}: device_class {device_class!r} not allowed for {platform}")
    if platform == "event" and not (isinstance(config.get("event_types"), list) and config["event_types"]):
        problems.append(f"{where}: event_types must be a non-empty list")
    if platform == "device_automation":
        if config.get("automation_type") != "trigger":
            problems.append(f"{where}: automation_type must be 'trigger'")
        if "device" in config:
            problems += check_device(config["device"], where)
    elif "device" in config:
        problems += check_device(config["device"], where)
    for key, value in config.items():
        if key.endswith("_topic") and (not isinstance(value, str) or not value or "+" in value or "#" in value):
            problems.append(f"{where}: {key} {value!r} is not a plain topic")
    return problems


def check_discovery(topic: str, payload: dict[str, Any], prefix: str = "homeassistant") -> list[str]:
    """Problems with one retained discovery message (device-based or single-component)."""
    parts = topic.split("/")
    if parts[0] != prefix or parts[-1] != "config" or len(parts) not in (4, 5):
        return [f"{topic}: not <prefix>/<component>/[<node_id>/]<object_id>/config"]
    problems = [f"{topic}: level {level!r} has characters outside [a-zA-Z0-9_-]" for level in parts[2:-1]
                if not TOPIC_LEVEL.match(level)]
    if parts[1] == "device":
        if "dev" not in payload or "cmps" not in payload:
            return problems + [f"{topic}: device discovery needs dev and cmps"]
        if not isinstance(payload.get("o"), dict) or not payload["o"].get("name"):
            problems.append(f"{topic}: device discovery needs the origin o with a name")
        problems += check_device(payload["dev"], topic)
        for key, component in payload["cmps"].items():
            platform = component.get("p")
            if set(component) == {"p"}:
                continue  # a removal
            problems += check_component(str(platform), component, f"{topic} cmps.{key}", in_device=True)
        return problems
    return problems + check_component(parts[1], payload, topic)
