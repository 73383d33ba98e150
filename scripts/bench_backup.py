#!/usr/bin/env python3
"""How long is a writer held up while a backup of a ~200 MB database runs?

Builds a database of the target size (people with 512-d float32 embeddings, events), then
runs ``BackupManager.create()`` to a local target while a writer inserts one event per
transaction (the way the pipeline records events), and reports the writer's commit
latencies during the backup against a baseline without one. Two writer placements:

* ``thread``: the writer is a thread of the process that runs the backup (a scheduled
  backup inside ``facepro run``: the GIL is shared);
* ``process``: the writer is another process (``facepro backup create`` from a shell while
  the service runs).

Prints JSON. Usage: scripts/bench_backup.py [--size-mb 200] [--workdir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.backup.manager import BackupManager
from edge.config import load_settings
from edge.db.connection import connect
from edge.db.migrator import Migrator


def build_db(db: Path, size_mb: int) -> None:
    with Migrator(db) as migrator:
        migrator.migrate()
    conn = connect(db)
    per_row = 2048 + 120
    rows = size_mb * (1 << 20) * 48 // 100 // per_row  # ~1.75x page overhead for 2 KiB blobs
    conn.execute("BEGIN")
    conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
                 "INSERT INTO users (name) SELECT 'person-' || x FROM c")
    conn.execute(f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) "
                 "INSERT INTO face_encodings (user_id, encoding, image_path) "
                 "SELECT 1 + x % 2000, randomblob(2048), 'person-' || (1 + x % 2000) || '/' || x || '.jpg' FROM c")
    events = size_mb * (1 << 20) * 8 // 100 // 150
    conn.execute(f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {events}) "
                 "INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name) "
                 "SELECT 'recognized', 'person-' || (x % 2000), 0.8, 'snapshots/' || hex(randomblob(24)) || '.jpg',"
                 " 'cam' || (x % 4) FROM c")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def writer_loop(db: str, stop, out, pause_s: float) -> None:
    conn = connect(db, busy_timeout_ms=10000)
    latencies = []
    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO events (event_type, object_label, confidence, camera_name) "
                         "VALUES ('unknown', NULL, 0.5, 'bench')")
            conn.execute("COMMIT")
            latencies.append(time.perf_counter() - t0)
            time.sleep(pause_s)
    finally:
        conn.close()
    out.put(latencies) if hasattr(out, "put") else out.extend(latencies)


def summarize(latencies: list[float]) -> dict:
    if not latencies:
        return {"commits": 0}
    ordered = sorted(latencies)
    return {"commits": len(ordered), "max_ms": round(ordered[-1] * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
            "median_ms": round(statistics.median(ordered) * 1000, 3),
            "over_100ms": sum(1 for x in ordered if x > 0.1)}


def run_phase(db: Path, mode: str, work, pause_s: float) -> tuple[dict, dict]:
    if mode == "thread":
        stop, out = threading.Event(), []
        worker = threading.Thread(target=writer_loop, args=(str(db), stop, out, pause_s))
    else:
        ctx = mp.get_context("spawn")
        stop, out = ctx.Event(), ctx.Queue()
        worker = ctx.Process(target=writer_loop, args=(str(db), stop, out, pause_s))
    worker.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    info = work()
    elapsed = time.perf_counter() - t0
    stop.set()
    latencies = out.get(timeout=60) if mode == "process" else None
    worker.join(60)
    if mode == "thread":
        latencies = out
    info["elapsed_s"] = round(elapsed, 2)
    return info, summarize(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--pause-ms", type=float, default=2.0, help="writer pause between commits")
    parser.add_argument("--modes", default="thread,process")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=args.workdir))
    try:
        data = work / "data"
        data.mkdir()
        settings_path = work / "settings.json"
        settings_path.write_text(json.dumps({
            "device": {"id": "bench", "name": "bench"},
            "paths": {"data_dir": str(data), "models_dir": str(work)},
            "mqtt": {"enabled": False}, "web": {"enabled": False},
            "backup": {"schedule": None, "keep": 1, "include": ["db", "faces", "settings"],
                       "targets": [{"name": "local", "type": "local", "path": str(work / "backups")}]}}))
        settings = load_settings(settings_path, env={})
        t0 = time.perf_counter()
        build_db(settings.db_path, args.size_mb)
        build_s = time.perf_counter() - t0
        manager = BackupManager(settings, "bench")
        report: dict = {"benchmark": "backup_writer_stall", "machine": platform.platform(),
                        "cpus": os.cpu_count(), "python": platform.python_version(),
                        "db_mb": round(settings.db_path.stat().st_size / (1 << 20), 1),
                        "build_s": round(build_s, 1), "writer_pause_ms": args.pause_ms, "runs": {}}
        pause = args.pause_ms / 1000
        for mode in args.modes.split(","):
            baseline, base_lat = run_phase(settings.db_path, mode, lambda: (time.sleep(5), {})[1], pause)

            def backup() -> dict:
                result = manager.create()
                return {"ok": result["ok"], "archive_mb": round(result["size"] / (1 << 20), 1)}

            info, lat = run_phase(settings.db_path, mode, backup, pause)
            report["runs"][mode] = {"backup": info, "writer_during_backup": lat, "writer_baseline_5s": base_lat}
        report["max_writer_stall_ms"] = max(r["writer_during_backup"]["max_ms"] for r in report["runs"].values())
        report["limit_ms"] = 100
        report["within_limit"] = report["max_writer_stall_ms"] <= 100
        print(json.dumps(report, indent=2))
        return 0 if report["within_limit"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
