#!/usr/bin/env python3
"""Does the status page slow the pipeline? Request latencies and processed fps, as JSON.

Starts ``facepro run`` on the shared clip (looping file camera, web on a free port), then
measures three phases of ``--seconds`` each:

* ``idle``: nobody looks at the page;
* ``dashboards``: ``--viewers`` open dashboards, each polling /api/status every 3 s and the
  charts every 10 s (what the page's script does);
* ``stress``: ``--threads`` clients requesting /api/status and the dashboard back to back.

For each: frames processed per second by the pipeline (from its counters) and the request
latencies (p50/p95/max ms). Usage: ``.venv/bin/python scripts/bench_web.py [--seconds 20]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, body, time.perf_counter() - start


def frames_processed(base: str) -> tuple[float, float]:
    _, body, _ = get(base + "/api/status")
    cameras = json.loads(body)["cameras"]["data"]
    return time.monotonic(), float(sum(c["frames_processed"] for c in cameras))


def summarize(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"requests": 0}
    ordered = sorted(latencies)
    return {"requests": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def phase(base: str, seconds: float, workers: list[threading.Thread], stop: threading.Event) -> float:
    t0, f0 = frames_processed(base)
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    t1, f1 = frames_processed(base)
    return round((f1 - f0) / (t1 - t0), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--viewers", type=int, default=5, help="open dashboards in the 'dashboards' phase")
    parser.add_argument("--threads", type=int, default=4, help="back-to-back clients in the 'stress' phase")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    port = free_port()
    settings = {
        "device": {"id": "bench-web", "name": "bench"},
        "paths": {"data_dir": str(tmp / "data"), "models_dir": str(SHARED / "models" / "face")},
        "cameras": [{"name": "stage", "source": str(SHARED / "media" / "short_hamilton_clip.mp4"), "loop": True}],
        "mqtt": {"enabled": False},
        "backup": {"schedule": None, "targets": []},
        "web": {"host": "127.0.0.1", "port": port, "public_read": True},
    }
    (tmp / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPRO_")}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(tmp / "settings.json"), "run"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "facepro.log", "wb"), env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.node()}",
                              "seconds_per_phase": args.seconds}
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if get(base + "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"facepro run did not become healthy; see {tmp / 'facepro.log'}")
            time.sleep(0.5)
        time.sleep(5)  # let the pipeline settle

        stop = threading.Event()
        result["idle"] = {"pipeline_fps": phase(base, args.seconds, [], stop)}

        latencies: list[float] = []
        lock = threading.Lock()

        def viewer(offset: float, stop: threading.Event) -> None:
            if stop.wait(offset):
                return
            n = 0
            while not stop.is_set():
                paths = ["/api/status"] + (["/partials/charts"] if n % 3 == 0 else [])
                for path in paths:
                    _, _, took = get(base + path)
                    with lock:
                        latencies.append(took)
                n += 1
                stop.wait(3.0)

        stop = threading.Event()
        workers = [threading.Thread(target=viewer, args=(i * 3.0 / args.viewers, stop)) for i in range(args.viewers)]
        fps = phase(base, args.seconds, workers, stop)
        result["dashboards"] = {"viewers": args.viewers, "pipeline_fps": fps, **summarize(latencies)}

        status_lat: list[float] = []
        page_lat: list[float] = []

        def hammer(stop: threading.Event) -> None:
            while not stop.is_set():
                _, _, took = get(base + "/api/status")
                _, _, took_page = get(base + "/")
                with lock:
                    status_lat.append(took)
                    page_lat.append(took_page)

        stop = threading.Event()
        workers = [threading.Thread(target=hammer, args=(stop,)) for _ in range(args.threads)]
        fps = phase(base, args.seconds, workers, stop)
        result["stress"] = {"threads": args.threads, "pipeline_fps": fps, "api_status": summarize(status_lat),
                            "dashboard": summarize(page_lat)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
