"""Home Assistant's side of the documented automation, played over a real broker.

:class:`EventEntity` does what HA's MQTT ``event`` entity does with its topics: its state is
the time the last event arrived (a new value per event); it is ``unavailable`` while the
device's availability topic says ``offline`` or while HA's own broker connection is down;
when the device is available again the entity shows its last state again (what HA restores).
:class:`StateTrigger` is a ``trigger: state`` on that entity: it fires on every state change,
except from the states in ``not_from`` and to those in ``not_to`` (the documented automation
uses ``not_from: [unavailable, unknown]`` and ``not_to: [unavailable, unknown]``: without
``not_to`` it also runs when the device goes offline).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class StateTrigger:
    not_from: tuple[str, ...] = ()
    not_to: tuple[str, ...] = ()
    fired: list[dict[str, Any]] = field(default_factory=list)

    def changed(self, old: str, new: str, attributes: dict[str, Any]) -> None:
        if new != old and old not in self.not_from and new not in self.not_to:
            self.fired.append({"from": old, "to": new, **attributes})


class EventEntity:
    def __init__(self, port: int, availability: str, recognition: str, triggers: list[StateTrigger]) -> None:
        self.availability = availability
        self.recognition = recognition
        self.triggers = triggers
        self.state = "unknown"
        self.last_event_state: str | None = None
        self.attributes: dict[str, Any] = {}
        self.device_online = False
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ha-emulator")
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.port = port

    def start(self) -> EventEntity:
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
            client.subscribe([(self.availability, 1), (self.recognition, 1)])
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
                self._set((self.last_event_state or "unknown") if self.device_online else "unavailable")
            elif message.topic == self.recognition:
                payload = json.loads(message.payload)
                self._count += 1
                self.attributes = payload
                self.last_event_state = f"{time.time():.6f}#{self._count}"
                if self.device_online:
                    self._set(self.last_event_state)
