#!/usr/bin/env python3
"""Gallery matching benchmark: one face (and a full batch) against N enrolled embeddings.

The gallery is loaded from a real SQLite database holding N face_encodings rows
(random L2-normalised float32 vectors, as enrolment stores them), then
``Gallery.match`` is timed. Prints JSON; target: one face against 100,000 128-d
embeddings in under 10 ms (median).

    .venv/bin/python scripts/bench_match.py [--size 100000] [--dim 128] [--repeat 200]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.db import connect  # noqa: E402
from edge.db.connection import transaction  # noqa: E402
from edge.db.faces import embedding_to_blob  # noqa: E402
from edge.db.migrator import Migrator  # noqa: E402
from edge.pipeline.gallery import Gallery  # noqa: E402

BACKEND = "bench"


def build_database(path: Path, size: int, dim: int, people: int, seed: int = 1) -> None:
    with Migrator(path, snapshot_dir=path.parent / "snapshots") as migrator:
        migrator.migrate()
    rng = np.random.default_rng(seed)
    conn = connect(path)
    try:
        with transaction(conn):
            conn.executemany("INSERT INTO users (name) VALUES (?)", [(f"person-{i:06d}",) for i in range(people)])
            ids = [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id")]
            for start in range(0, size, 10_000):
                block = rng.normal(size=(min(10_000, size - start), dim)).astype(np.float32)
                block /= np.linalg.norm(block, axis=1, keepdims=True)
                conn.executemany(
                    "INSERT INTO face_encodings (user_id, encoding, embedding_dim, backend) VALUES (?, ?, ?, ?)",
                    [(ids[(start + i) % people], embedding_to_blob(v), dim, BACKEND) for i, v in enumerate(block)])
    finally:
        conn.close()


def time_match(gallery: Gallery, queries: np.ndarray, repeat: int) -> dict[str, float]:
    for _ in range(5):
        gallery.match(queries)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gallery.match(queries)
        samples.append(time.perf_counter() - t0)
    return {
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(float(np.percentile(samples, 95)) * 1000, 3),
        "min_ms": round(min(samples) * 1000, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gallery matching benchmark")
    parser.add_argument("--size", type=int, default=100_000, help="enrolled embeddings")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=16, help="faces in the batch figure (pipeline.max_faces)")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-match-") as tmp:
        db_path = Path(tmp) / "facepro.db"
        t0 = time.perf_counter()
        build_database(db_path, args.size, args.dim, min(args.people, args.size))
        build_s = time.perf_counter() - t0
        conn = connect(db_path)
        t0 = time.perf_counter()
        gallery = Gallery.load(conn, args.dim, BACKEND, max_queries=args.batch)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        changed = gallery.changed(conn)
        check_ms = (time.perf_counter() - t0) * 1000
        conn.close()

    rng = np.random.default_rng(2)
    probe = gallery.matrix[[12_345 % len(gallery)]] + rng.normal(scale=0.02, size=(1, args.dim)).astype(np.float32)
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    idx, _ = gallery.match(probe)
    assert int(idx[0]) == 12_345 % len(gallery), "benchmark probe did not find its own row"
    batch = rng.normal(size=(args.batch, args.dim)).astype(np.float32)
    batch /= np.linalg.norm(batch, axis=1, keepdims=True)

    one = time_match(gallery, probe, args.repeat)
    many = time_match(gallery, batch, max(args.repeat // 4, 10))
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "numpy": np.__version__},
        "gallery": {"embeddings": len(gallery), "dim": args.dim, "people": len(gallery.people),
                    "matrix_bytes": int(gallery.matrix.nbytes)},
        "build_db_s": round(build_s, 2),
        "load_from_db_s": round(load_s, 3),
        "reload_check_ms": round(check_ms, 3),
        "reload_check_changed": changed,
        "match_one_face": one,
        f"match_{args.batch}_faces": many,
        "target_ms": 10.0,
        "meets_target": one["median_ms"] < 10.0,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
