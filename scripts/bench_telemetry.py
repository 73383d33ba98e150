#!/usr/bin/env python3
"""What telemetry sampling costs: CPU per sample, and process CPU while sampling at 1 Hz.

    .venv/bin/python scripts/bench_telemetry.py [--seconds 30] [--samples 300] [--cameras 2]

Worst case for the sampler: every (stage, camera) latency window full (1024 observations
each, so every percentile works on full arrays), a real SQLite file for the minute
aggregates (the direct samples cross minute boundaries, so writes are included), psutil,
disks and the GPU chain as on the machine. Prints JSON; ``ok`` is true when sampling at
1 Hz costs under 1% of one CPU core. Exit 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.migrate import migrate_database
from edge.metrics import STAGES
from edge.telemetry.component import Telemetry
from edge.telemetry.prometheus import render

LIMIT_PERCENT = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="wall time of the 1 Hz run (default 30)")
    parser.add_argument("--samples", type=int, default=300, help="back-to-back samples for the per-sample cost")
    parser.add_argument("--cameras", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        settings_path = Path(tmp) / "settings.json"
        settings_path.write_text(json.dumps({"paths": {"data_dir": str(Path(tmp) / "data")},
                                             "telemetry": {"sample_interval_s": 1.0}}))
        settings = load_settings(settings_path, env={})
        migrate_database(settings)
        ctx = ServiceContext(settings=settings, device_id="bench")
        rng = random.Random(1)
        cameras = [f"cam{i}" for i in range(args.cameras)]
        for camera in cameras:
            for stage in STAGES:
                for _ in range(ctx.metrics._window):
                    ctx.metrics.observe(stage, rng.uniform(0.001, 0.08), camera)
            ctx.metrics.incr("frames_captured", 25_000, camera)
            ctx.metrics.incr("frames_processed", 24_000, camera)

        # 1. CPU per sample, back to back (this thread's CPU time only)
        telemetry = Telemetry(ctx)
        telemetry.open_store()
        t0 = time.time() - time.time() % 60 + 30
        cpu0 = time.thread_time()
        for i in range(args.samples):
            for camera in cameras:
                ctx.metrics.incr("frames_processed", 10, camera)
            telemetry.sample(now=t0 + i)
        per_sample_ms = (time.thread_time() - cpu0) / args.samples * 1000
        render_cpu0 = time.thread_time()
        for _ in range(20):
            body, _ = render(ctx)
        render_ms = (time.thread_time() - render_cpu0) / 20 * 1000
        telemetry.stop()

        # 2. the real component at 1 Hz, the main thread asleep: process CPU / wall
        ctx2 = ServiceContext(settings=settings, device_id="bench")
        ctx2.metrics = ctx.metrics
        live = Telemetry(ctx2)
        live.start()
        cpu_start, wall_start = time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        cpu_used, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
        samples_taken = len(live.history(args.seconds + 5).get("cpu_percent", []))
        gpu = live.snapshot()["gpu"]
        live.stop()

    live_percent = cpu_used / wall * 100
    result = {
        "benchmark": "telemetry sampling",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "load_1m": round(os.getloadavg()[0], 2)},
        "cameras": args.cameras,
        "stage_windows_full": True,
        "per_sample_cpu_ms": round(per_sample_ms, 3),
        "per_sample_cpu_percent_at_1hz": round(per_sample_ms / 10, 4),
        "metrics_render_cpu_ms": round(render_ms, 3),
        "metrics_body_bytes": len(body),
        "live_run": {"seconds": round(wall, 2), "samples": samples_taken, "process_cpu_s": round(cpu_used, 4),
                     "cpu_percent_of_one_core": round(live_percent, 4)},
        "limit_percent": LIMIT_PERCENT,
        "gpu": {"available": gpu["available"], "source": gpu.get("source")},
    }
    result["ok"] = live_percent < LIMIT_PERCENT and per_sample_ms / 10 < LIMIT_PERCENT
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
