"""A test-side MQTT subscriber that behaves like a home-automation hub, and broker helpers."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import DEVICE
from tests.support.mosquitto import Mosquitto

ROOT = f"facepro/{DEVICE}"  # the device's topic root


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    @property
    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return json.loads(self.payload)


class Hub:
    def __init__(self, port: int, subscriptions: tuple[str, ...] = ("#",), *, client_id: str | None = None,
                 persistent: bool = False, username: str | None = None, password: str | None = None) -> None:
        self.port = port
        self.subscriptions = subscriptions
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  clean_session=not persistent)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 2)
        self.messages: list[Received] = []
        self.connected = threading.Event()
        self._lock = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe([(topic, 1) for topic in self.subscriptions])
            self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain),
                                          time.monotonic()))
            self._lock.notify_all()

    def start(self, timeout: float = 10) -> Hub:
        self.client.connect_async("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(timeout), "hub could not connect to the broker"
        time.sleep(0.2)  # let the SUBACK arrive before the test publishes
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 10, after: float = 0.0,
                 what: str = "message") -> Received:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for message in self.messages:
                    if message.at >= after and predicate(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"no {what} within {timeout} s; topics seen: {seen}")
                self._lock.wait(left)

    def wait_topic(self, topic: str, timeout: float = 10, after: float = 0.0,
                   payload: str | None = None) -> Received:
        return self.wait_for(lambda m: m.topic == topic and (payload is None or m.text == payload),
                             timeout, after, what=f"{topic} {payload or ''}".strip())

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} not met within {timeout} s")
                self._lock.wait(min(left, 0.2))


def _stay_root(broker: Mosquitto) -> None:
    # Started as root, mosquitto drops to the 'mosquitto' user, which cannot read pytest's
    # private temp dirs (password file, persistence file); 'user root' keeps it as is.
    if os.geteuid() == 0:
        broker.conf.write_text(broker.conf.read_text() + "user root\n")


def persistent_broker(workdir: Path, password_file: Path | None = None) -> Mosquitto:
    """A broker that keeps sessions and queued QoS 1 messages across a stop/start (like a real one)."""
    broker = Mosquitto(workdir, password_file=password_file)
    text = broker.conf.read_text().replace("persistence false",
                                           f"persistence true\npersistence_location {workdir}/")
    broker.conf.write_text(text)
    _stay_root(broker)
    return broker


def auth_broker(workdir: Path, user: str, password: str) -> Mosquitto:
    """A broker that only lets ``user``/``password`` in."""
    broker = Mosquitto(workdir, password_file=password_file(workdir, user, password))
    _stay_root(broker)
    return broker


def password_file(workdir: Path, user: str, password: str) -> Path:
    path = workdir / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), user, password], check=True,
                   capture_output=True)
    path.chmod(0o600)
    return path
