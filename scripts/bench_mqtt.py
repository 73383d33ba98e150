#!/usr/bin/env python3
"""MQTT outbox benchmark: how fast a backlog of unpublished events drains to a real broker.

Starts a private Mosquitto on a free loopback port, stores N unpublished event rows in a
fresh database, starts the MQTT publisher and times until every row is marked published
(PUBACK received) and a subscriber has received every event. Prints JSON.

    .venv/bin/python scripts/bench_mqtt.py [--events 5000] [--max-inflight 20]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge.config import load_settings  # noqa: E402
from edge.context import ServiceContext  # noqa: E402
from edge.db import connect  # noqa: E402
from edge.db.migrate import migrate_database  # noqa: E402
from edge.db.outbox import EventOutbox  # noqa: E402
from edge.mqtt.publisher import MqttPublisher  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"mosquitto did not listen on {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--max-inflight", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_mqtt_"))
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"max_queued_messages 0\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = None
    try:
        wait_port(port)
        settings_path = work / "settings.json"
        settings_path.write_text(json.dumps({
            "device": {"id": "bench-device", "name": "bench"},
            "paths": {"data_dir": str(work / "data"), "models_dir": str(work / "models")},
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "max_inflight": args.max_inflight},
            "telemetry": {"interval_s": 60},
        }))
        settings = load_settings(settings_path, env={})
        migrate_database(settings)
        conn = connect(settings.db_path)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name)"
            " VALUES ('face_recognized', ?, 0.8, 'snapshots/2026-01-01/x.jpg', 'door')",
            [(f"person{i % 50}",) for i in range(args.events)])
        conn.execute("COMMIT")
        conn.close()

        received: set[int] = set()
        done = threading.Event()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
        subscribed = threading.Event()

        def on_message(_c, _u, msg) -> None:
            received.add(json.loads(msg.payload)["id"])
            if len(received) >= args.events:
                done.set()

        sub.on_message = on_message
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.on_connect = lambda c, *a: c.subscribe("facepro/bench-device/events", qos=1)
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        subscribed.wait(10)

        ctx = ServiceContext(settings=settings, device_id="bench-device")
        started = time.perf_counter()
        publisher = MqttPublisher(ctx)
        publisher.start()
        done.wait(600)
        received_s = time.perf_counter() - started
        outbox = EventOutbox(settings.db_path)
        while outbox.counts()["unpublished"] and time.perf_counter() - started < 600:
            time.sleep(0.01)
        marked_s = time.perf_counter() - started
        unpublished = outbox.counts()["unpublished"]
        outbox.close()
        sub.disconnect()
        sub.loop_stop()
        print(json.dumps({
            "benchmark": "mqtt_outbox_backlog_drain",
            "events": args.events,
            "max_inflight": args.max_inflight,
            "received": len(received),
            "unpublished_after": unpublished,
            "all_received_s": round(received_s, 3),
            "all_marked_published_s": round(marked_s, 3),
            "events_per_s": round(args.events / marked_s, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        }, indent=2))
        return 0 if len(received) == args.events and unpublished == 0 else 1
    finally:
        if publisher is not None:
            publisher.stop()
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
