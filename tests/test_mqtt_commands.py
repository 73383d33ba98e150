"""MQTT commands under attack against a real Mosquitto and a real backup manager: bursts,
retained commands, empty, oversized and deeply nested payloads, a failing backup, and a burst
of Home Assistant "online" messages."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from edge.backup.manager import BackupManager
from edge.config import load_settings
from edge.mqtt.actions import CommandError, nesting_depth, parse_payload
from edge.mqtt.commands import CommandGate
from tests.conftest import DEVICE
from tests.support.context import make_ctx
from tests.support.mqtt_hub import ROOT, Hub
from tests.support.waiting import wait_until

RESULT = f"{ROOT}/command/result"
EVENT = f"{ROOT}/command/event"


def backup_ctx(write_settings, port: int, target_path, cooldown: float = 2.0):
    settings = load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "keepalive_s": 5,
                 "command_cooldown_s": cooldown},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False},
        "backup": {"schedule": None, "targets": [{"name": "local", "type": "local", "path": str(target_path)}]},
    }))
    ctx = make_ctx(settings)
    ctx.backups = BackupManager(settings, ctx.device_id, ctx.bus, ctx.metrics)
    return ctx


def results(hub: Hub, after: float) -> list[dict[str, Any]]:
    return [m.json() for m in hub.on(RESULT) if m.at >= after]


def test_a_burst_of_backup_commands_makes_one_archive(tmp_path, write_settings, mosquitto, publisher_factory):
    ctx = backup_ctx(write_settings, mosquitto.port, tmp_path / "backups")
    publisher_factory(ctx)
    hub = Hub(mosquitto.port).start()
    try:
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        t0 = time.monotonic()
        for _ in range(20):
            hub.client.publish(f"{ROOT}/command/backup", "{}", qos=1)
        hub.wait_until(lambda: len([r for r in results(hub, t0) if not r.get("finished")]) >= 20,
                       timeout=20, what="20 answers")
        answers = [r for r in results(hub, t0) if not r.get("finished")]
        assert sum(r["ok"] for r in answers) == 1
        refused = [r for r in answers if not r["ok"]]
        assert len(refused) == 19 and all(r["refused"] for r in refused)
        assert all("already running" in r["error"] or "cooldown" in r["error"] for r in refused)
        job = next(r for r in answers if r["ok"])["result"]["job"]
        done = hub.wait_for(lambda m: m.topic == RESULT and m.json().get("finished"), timeout=30,
                            what="the backup's outcome").json()
        assert done == {"action": "backup", "ok": True, "job": job, "finished": True}
        hub.wait_until(lambda: len([m for m in hub.on(EVENT) if m.at >= t0]) >= 20, what="20 command events")
        outcomes = [m.json()["event_type"] for m in hub.on(EVENT) if m.at >= t0]
        assert outcomes.count("refused") == 19 and outcomes.count("ok") == 1
        assert len(ctx.backups.list("local")) == 1

        # After the cooldown the next command runs again.
        time.sleep(2.2)
        t1 = time.monotonic()
        hub.publish(f"{ROOT}/command/backup", "PRESS")
        assert hub.wait_topic(RESULT, after=t1).json()["ok"] is True
        hub.wait_for(lambda m: m.topic == RESULT and m.at >= t1 and m.json().get("finished"), timeout=30,
                     what="the second backup's outcome")
        assert len(ctx.backups.list("local")) == 2
    finally:
        hub.stop()


def test_a_failed_backup_is_reported_in_home_assistant(tmp_path, write_settings, mosquitto, publisher_factory):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the target directory should be")
    ctx = backup_ctx(write_settings, mosquitto.port, blocker / "backups")
    publisher_factory(ctx)
    hub = Hub(mosquitto.port).start()
    try:
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        t0 = time.monotonic()
        hub.publish(f"{ROOT}/command/backup", "{}")
        event = hub.wait_for(lambda m: m.topic == EVENT and m.at >= t0, timeout=30, what="a command event").json()
        assert event["event_type"] == "failed" and event["action"] == "backup" and event["error"]
        done = [r for r in results(hub, t0) if r.get("finished")]
        assert done and done[0]["ok"] is False and done[0]["error"] == event["error"]
    finally:
        hub.stop()


def test_retained_empty_huge_and_deep_commands_never_run(tmp_path, write_settings, mosquitto, publisher_factory,
                                                         caplog):
    ctx = backup_ctx(write_settings, mosquitto.port, tmp_path / "backups", cooldown=0)
    hub = Hub(mosquitto.port).start()
    try:
        hub.publish(f"{ROOT}/command/backup", "{}", retain=True)  # left on the broker
        caplog.set_level(logging.WARNING)
        t0 = time.monotonic()
        publisher = publisher_factory(ctx)
        answer = hub.wait_topic(RESULT, after=t0, timeout=15).json()
        assert answer["ok"] is False and answer["refused"] and "retained" in answer["error"]
        assert "retained command ignored" in caplog.text
        hub.publish(f"{ROOT}/command/backup", "", retain=True)  # cleared: no command, no answer
        time.sleep(0.5)
        assert len(results(hub, t0)) == 1  # the clearing (empty) message is no command: no answer
        for payload, expected in [("   ", "empty payload"), ("\n", "empty payload"),
                                  ("[" * 100_000, "bytes refused"), ("[" * 50 + "]" * 50, "nested deeper"),
                                  (json.dumps({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}),
                                   "nested deeper"),
                                  (json.dumps({"target": "x" * 5000}), "bytes refused")]:
            t1 = time.monotonic()
            hub.publish(f"{ROOT}/command/backup", payload)
            answer = hub.wait_topic(RESULT, after=t1).json()
            assert answer["ok"] is False and expected in answer["error"], (payload[:20], answer)
        time.sleep(0.5)
        assert ctx.backups.list("local") == []
        assert "RecursionError" not in caplog.text and "Traceback" not in caplog.text
        assert publisher.status()["connected"]
    finally:
        hub.stop()


def test_command_answers_do_not_confirm_a_guessed_secret(tmp_path, write_settings, mosquitto, publisher_factory):
    """Answers are masked for registered secrets; one that echoed the action, an argument name
    or a target name would say ``***`` exactly when a guess was the MQTT password."""
    from edge import secrets

    ctx = backup_ctx(write_settings, mosquitto.port, tmp_path / "backups", cooldown=0)
    secret = "hunter2-Correct-Horse"
    secrets.register(secret)
    publisher_factory(ctx)
    hub = Hub(mosquitto.port).start()
    try:
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        answers: dict[str, list[Any]] = {}
        for guess in (secret, "wrong-guess-Battery-Staple"):
            sent = [(f"{ROOT}/command/{guess}", "{}"),
                    (f"{ROOT}/command/backup", json.dumps({guess: 1})),
                    (f"{ROOT}/command/backup", json.dumps({"target": guess})),
                    (f"{ROOT}/command/backup", json.dumps({"include": [guess]}))]
            answers[guess] = []
            for topic, payload in sent:
                t0 = time.monotonic()
                hub.publish(topic, payload)
                answer = hub.wait_topic(RESULT, after=t0).json()
                answers[guess].append(answer)
                assert answer["ok"] is False and "***" not in json.dumps(answer), answer
        right, wrong = answers.values()
        assert right == wrong  # the same answers whether or not the guess was the password
        assert right[0]["action"] is None  # a made-up action is not repeated
    finally:
        hub.stop()


def test_fifty_home_assistant_online_messages_give_one_republication(write_settings, mosquitto, publisher_factory):
    settings = load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 5},
        "telemetry": {"interval_s": 60}, "web": {"enabled": False}}))
    publisher = publisher_factory(make_ctx(settings))
    hub = Hub(mosquitto.port).start()
    config = f"homeassistant/device/{DEVICE}/config"
    try:
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        hub.wait_topic(config)
        t0 = time.monotonic()
        for _ in range(50):
            hub.client.publish("homeassistant/status", "online", qos=1)
        hub.wait_topic(config, after=t0, timeout=15)
        time.sleep(3.0)
        assert len([m for m in hub.on(config) if m.at >= t0]) == 1
        assert len([m for m in hub.on(f"{ROOT}/state") if m.at >= t0]) <= 2  # (one more from telemetry)
        wait_until(lambda: publisher.status()["connected"], 1, "still connected")
    finally:
        hub.stop()


def test_payload_bounds_and_gate_without_a_broker():
    assert nesting_depth('{"a": "[[[[[[[[[[[[[["}') == 1  # brackets inside strings do not count
    assert nesting_depth("[" * 100_000) == 9  # counting stops past the limit
    for raw in (b"", b" \n", b"[" * 5000):
        with pytest.raises(CommandError):
            parse_payload(raw)
    assert parse_payload(b"PRESS") == {} and parse_payload(b'{"target": "usb"}') == {"target": "usb"}
    now = [100.0]
    running = {"backup": False}
    gate = CommandGate(10, lambda action: running[action], clock=lambda: now[0])
    assert gate.refusal("backup", retained=True) is not None
    assert gate.refusal("backup", retained=False) is None
    gate.ran("backup")
    now[0] += 9.9
    assert "cooldown" in (gate.refusal("backup", retained=False) or "")
    now[0] += 0.2
    running["backup"] = True
    assert "already running" in (gate.refusal("backup", retained=False) or "")
    running["backup"] = False
    assert gate.refusal("backup", retained=False) is None
