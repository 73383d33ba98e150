"""Home Assistant's side of the documented automations, played over a real broker.

:class:`MqttEntity` does what HA's MQTT entities do with their topics: the state comes from
the entity's state topic; it is ``unavailable`` while the device's availability topic says
``offline`` or while HA's own broker connection is down; when the device is available again
the entity shows its last state again (what HA keeps). :class:`EventEntity` is an ``event``
entity (its state is the time the last event arrived: a new value per event);
:class:`BinarySensor` a ``binary_sensor`` whose ``value_template`` reads one JSON key
(``on``/``off``; a payload matching neither is ignored, as HA does).

:class:`StateTrigger` is a ``trigger: state`` on such an entity: it fires on every state
change to ``to`` (any state when None), except from the states in ``not_from`` and to those
in ``not_to``. :func:`documented_trigger` reads one from an automation in
deploy/HOME_ASSISTANT.md, so the tests play what the docs say.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class StateTrigger:
    to: str | None = None
    not_from: tuple[str, ...] = ()
    not_to: tuple[str, ...] = ()
    fired: list[dict[str, Any]] = field(default_factory=list)

    def changed(self, old: str, new: str, attributes: dict[str, Any]) -> None:
        if new == old or old in self.not_from or new in self.not_to:
            return
        if self.to is None or new == self.to:
            self.fired.append({"from": old, "to": new, **attributes})


DOCS = Path(__file__).resolve().parents[2] / "deploy" / "HOME_ASSISTANT.md"


def documented_trigger(alias: str) -> StateTrigger:
    """The ``trigger: state`` of the documented automation ``alias`` (``to``, ``not_from``,
    ``not_to``; the flow-style lists and quoted scalars the docs use)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    block = next(b for b in blocks if f'alias: "{alias}"' in b)
    triggers = block.split("triggers:", 1)[1].split("\n", 1)[1]
    section = re.split(r"^\S", triggers, maxsplit=1, flags=re.M)[0]
    assert "trigger: state" in section, section
    found = dict(re.findall(r"^\s+(to|not_from|not_to): (.+)$", section, re.M))

    def states(text: str) -> tuple[str, ...]:
        return tuple(part.strip().strip('"') for part in text.strip("[]").split(","))

    return StateTrigger(to=found["to"].strip('"') if "to" in found else None,
                        not_from=states(found["not_from"]) if "not_from" in found else (),
                        not_to=states(found["not_to"]) if "not_to" in found else ())


class MqttEntity:
    def __init__(self, port: int, availability: str, state_topic: str, triggers: list[StateTrigger],
                 client_id: str = "ha-emulator") -> None:
        self.availability = availability
        self.state_topic = state_topic
        self.triggers = triggers
        self.state = "unknown"
        self.last_value: str | None = None
        self.attributes: dict[str, Any] = {}
        self.device_online = False
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.port = port

    def value(self, payload: bytes) -> tuple[str, dict[str, Any]] | None:
        """The state and attributes a message on the state topic gives (None: ignored)."""
        raise NotImplementedError

    def start(self) -> MqttEntity:
        self.client.connect_async("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        assert self.connected.wait(10), "HA emulator could not connect"
        time.sleep(0.2)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _set(self, new: str) -> None:
        old, self.state = self.state, new
        for trigger in self.triggers:
            trigger.changed(old, new, dict(self.attributes))

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe([(self.availability, 1), (self.state_topic, 1)])
            self.connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()
        with self._lock:
            self.device_online = False
            self._set("unavailable")

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic == self.availability:
                self.device_online = message.payload == b"online"
                self._set((self.last_value or "unknown") if self.device_online else "unavailable")
            elif message.topic == self.state_topic:
                value = self.value(bytes(message.payload))
                if value is None:
                    return
                self.last_value, self.attributes = value
                if self.device_online:
                    self._set(self.last_value)


class EventEntity(MqttEntity):
    _count = 0

    def value(self, payload: bytes) -> tuple[str, dict[str, Any]]:
        self._count += 1
        return f"{time.time():.6f}#{self._count}", json.loads(payload)

    @property
    def last_event_state(self) -> str | None:
        return self.last_value


class BinarySensor(MqttEntity):
    def __init__(self, *args: Any, key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = key

    def value(self, payload: bytes) -> tuple[str, dict[str, Any]] | None:
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        state = {"ON": "on", "OFF": "off"}.get(data.get(self.key)) if isinstance(data, dict) else None
        return None if state is None else (state, data)
