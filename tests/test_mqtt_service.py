"""``facepro run`` with MQTT enabled, as a real subprocess against a real broker.

One scenario, in order: a broker that is down at boot does not stop the service; once it
is up, availability is retained ``online`` and events stored before the start are sent;
SIGKILL yields the retained ``offline`` last will (keepalive 5 s); rows added while the
service is down are sent when it starts again; SIGTERM publishes ``offline`` explicitly.
"""
from __future__ import annotations

import signal
import subprocess
import time

from edge.config import load_settings
from edge.db.migrate import migrate_database
from tests.conftest import DEVICE
from tests.support.db import event_rows, event_uids, insert_event
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_hub import ROOT, Hub
from tests.support.service import start_service, stop_process
from tests.support.waiting import wait_until


def test_run_with_dead_broker_will_on_kill_and_replay_on_restart(tmp_path, write_settings):
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Mosquitto(workdir)  # port chosen, not started: the broker is down at boot
    config = write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False}, "backup": {"schedule": None},
    })
    settings = load_settings(config)
    migrate_database(settings)
    before = [insert_event(settings.db_path, person="bob"), insert_event(settings.db_path, person=None)]

    def uids(rows: list[int]) -> set[str]:
        known = event_uids(settings.db_path)
        return {known[row] for row in rows}

    proc = start_service(config, stderr=subprocess.STDOUT)
    hub = None
    try:
        time.sleep(3)
        assert proc.poll() is None, stop_process(proc)
        broker.start()
        hub = Hub(broker.port).start()
        online = hub.wait_topic(f"{ROOT}/availability", payload="online", timeout=20)
        hub.wait_until(lambda: {m.json()["id"] for m in hub.on(f"{ROOT}/events")} >= uids(before),
                       what="events stored before the start")
        hub.wait_topic(f"homeassistant/device/{DEVICE}/config")

        t_kill = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        will = hub.wait_topic(f"{ROOT}/availability", payload="offline", after=t_kill, timeout=20)
        assert will.at > online.at

        # Events recorded while the service is down are sent when it comes back.
        while_down = [insert_event(settings.db_path, person="carol") for _ in range(3)]
        proc = start_service(config, stderr=subprocess.STDOUT)
        t_start = time.monotonic()
        hub.wait_topic(f"{ROOT}/availability", payload="online", after=t_start, timeout=20)
        hub.wait_until(lambda: {m.json()["id"] for m in hub.on(f"{ROOT}/events")} >= uids(while_down),
                       what="events stored while the service was down")
        wait_until(lambda: all(r["published_at"] is not None for r in event_rows(settings.db_path)), 10,
                   interval=0.2, fail=False)
        assert all(r["published_at"] is not None for r in event_rows(settings.db_path))

        t_stop = time.monotonic()
        output = stop_process(proc, signal.SIGTERM)
        assert proc.returncode == 0, output
        hub.wait_topic(f"{ROOT}/availability", payload="offline", after=t_stop, timeout=5)
        assert "Traceback" not in output, output
    finally:
        if proc.poll() is None:
            stop_process(proc, signal.SIGKILL)
        if hub is not None:
            hub.stop()
        broker.stop()
