#!/usr/bin/env python3
"""Home Assistant side of the MQTT publisher, measured against a private Mosquitto: how many
discovery re-publications a burst of ``homeassistant/status online`` causes, how many of a burst
of backup commands run and how many archives they write, how many of the events queued during
a broker outage would notify (fire the event entity), and the size and cost of the snapshot
image. Prints JSON.

    .venv/bin/python scripts/bench_ha.py [--online 50] [--commands 20] [--outage-events 8]
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge.backup.manager import BackupManager  # noqa: E402
from edge.config import load_settings  # noqa: E402
from edge.context import ServiceContext  # noqa: E402
from edge.db.events import EventStore  # noqa: E402
from edge.db.migrate import migrate_database  # noqa: E402
from edge.mqtt.camera_states import small_jpeg  # noqa: E402
from edge.mqtt.publisher import MqttPublisher  # noqa: E402

DEVICE = "bench-device"
ROOT = f"facepro/{DEVICE}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(work: Path, port: int) -> subprocess.Popen[bytes]:
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"mosquitto did not listen on {port}")


class Counter:
    def __init__(self, port: int) -> None:
        self.messages: list[tuple[float, str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ha")
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.on_message = lambda _c, _u, m: self.messages.append((time.monotonic(), m.topic, m.payload))
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        time.sleep(0.5)

    def count(self, topic: str, after: float) -> int:
        return sum(1 for at, t, _p in self.messages if t == topic and at >= after)

    def payloads(self, topic: str, after: float) -> list[bytes]:
        return [p for at, t, p in self.messages if t == topic and at >= after]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online", type=int, default=50)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--outage-events", type=int, default=8)
    parser.add_argument("--outage-s", type=float, default=5.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_ha_"))
    port = free_port()
    broker = start_broker(work, port)
    publisher = None
    try:
        settings_path = work / "settings.json"
        settings_path.write_text(json.dumps({
            "device": {"id": DEVICE, "name": "bench"},
            "paths": {"data_dir": str(work / "data"), "models_dir": str(work / "models")},
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "keepalive_s": 5,
                     "event_freshness_s": 2},
            "telemetry": {"interval_s": 60}, "web": {"enabled": False},
            "backup": {"schedule": None, "targets": [{"name": "local", "type": "local",
                                                      "path": str(work / "backups")}]},
        }))
        settings = load_settings(settings_path, env={})
        migrate_database(settings)
        ctx = ServiceContext(settings=settings, device_id=DEVICE)
        ctx.backups = BackupManager(settings, DEVICE, ctx.bus, ctx.metrics)
        hub = Counter(port)
        publisher = MqttPublisher(ctx)
        publisher.start()
        time.sleep(1.5)

        config = f"homeassistant/device/{DEVICE}/config"
        t0 = time.monotonic()
        for _ in range(args.online):
            hub.client.publish("homeassistant/status", "online", qos=1)
        time.sleep(13.0)  # the debounce (2 s) and the minimum gap (10 s) both pass
        republications = hub.count(config, t0)

        t1 = time.monotonic()
        for _ in range(args.commands):
            hub.client.publish(f"{ROOT}/command/backup", "{}", qos=1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                json.loads(p).get("finished") for p in hub.payloads(f"{ROOT}/command/result", t1)):
            time.sleep(0.1)
        answers = [json.loads(p) for p in hub.payloads(f"{ROOT}/command/result", t1)]
        accepted = sum(1 for a in answers if a.get("ok") and not a.get("finished"))
        archives = len(ctx.backups.list("local"))

        # A broker outage with events recorded meanwhile.
        broker.terminate()
        broker.wait(timeout=10)
        with EventStore(settings.db_path) as store:
            for i in range(args.outage_events):
                store.insert("face_recognized", f"p{i}", 0.8, "door", None, time.time())
        ctx.bus.publish("event", {})
        time.sleep(args.outage_s)
        t2 = time.monotonic()
        broker = start_broker(work, port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and hub.count(f"{ROOT}/events", t2) < args.outage_events:
            time.sleep(0.1)
        time.sleep(1.0)
        late = [json.loads(p) for p in hub.payloads(f"{ROOT}/events", t2)]
        notified = hub.count(f"{ROOT}/recognition", t2)

        frame = cv2.resize(cv2.imread(str(REPO.parent / "shared" / "media" / "obama_and_biden.jpg")), (1920, 1080))
        source = work / "frame.jpg"
        cv2.imwrite(str(source), frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        started = time.perf_counter()
        runs = 20
        for _ in range(runs):
            image = small_jpeg(source, int(settings["mqtt.image_max_side"]))
        image_ms = (time.perf_counter() - started) * 1000 / runs
        hub.client.loop_stop()
        print(json.dumps({
            "benchmark": "ha_mqtt",
            "ha_online_messages": args.online,
            "discovery_republications": republications,
            "backup_commands": args.commands,
            "backup_commands_accepted": accepted,
            "backup_commands_refused": sum(1 for a in answers if a.get("refused")),
            "archives_written": archives,
            "outage_s": args.outage_s,
            "outage_events": args.outage_events,
            "outage_events_delivered": len(late),
            "outage_events_marked_delayed": sum(1 for e in late if e.get("delayed")),
            "outage_events_notified": notified,
            "snapshot_source_bytes": source.stat().st_size,
            "snapshot_image_bytes": len(image or b""),
            "snapshot_image_ms": round(image_ms, 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        }, indent=2))
        return 0
    finally:
        if publisher is not None:
            publisher.stop()
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
