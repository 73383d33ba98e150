"""mqtt_disconnected with the real MQTT part and a real broker that goes away and comes back."""
from __future__ import annotations

import time

from edge.config import load_settings
from edge.context import ServiceContext
from edge.telemetry.component import Telemetry
from tests.support.waiting import wait_until


def sample_until(telemetry: Telemetry, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        telemetry.sample()
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s; snapshot: {telemetry.snapshot().get('mqtt')}")


def test_broker_outage_raises_once_and_clears_once(write_settings, mosquitto) -> None:
    from edge.mqtt.publisher import MqttPublisher

    settings = load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 5},
        "telemetry": {"history_retention_days": 0},
        "alerts": {"mqtt_disconnected": {"enabled": True, "threshold": 0, "duration_s": 1.0, "hysteresis": 0}},
    }), env={})
    ctx = ServiceContext(settings=settings, device_id="test-device")
    published: list[dict] = []
    ctx.bus.subscribe("alert", lambda p: published.append(p) if p["name"] == "mqtt_disconnected" else None)
    telemetry = Telemetry(ctx, persist=False)
    ctx.mqtt = MqttPublisher(ctx)
    ctx.mqtt.start()
    try:
        # Connected before the first sample: samples taken while a slow (loaded) connect lasts
        # over duration_s would raise the alert before the outage.
        wait_until(lambda: ctx.mqtt.status()["connected"], 30, "MQTT connected")
        # (the snapshot's figure, not the live status: one can connect between the two)
        sample_until(telemetry, lambda: telemetry.snapshot()["mqtt"]["connected"])
        assert telemetry.snapshot()["mqtt"]["connected"] is True
        mosquitto.stop()
        sample_until(telemetry, lambda: len(published) >= 1)
        assert published[0]["state"] == "raised" and published[0]["value"] == 1.0
        mosquitto.start()
        sample_until(telemetry, lambda: len(published) >= 2)
        for _ in range(5):  # connected and steady: nothing more happens
            telemetry.sample()
            time.sleep(0.1)
    finally:
        ctx.mqtt.stop()
    assert [p["state"] for p in published] == ["raised", "cleared"]
