#!/usr/bin/env python3
"""End-to-end pipeline benchmark on the shared clip, side by side in one run (JSON out).

(a) our pipeline: ``edge.pipeline.service.process_file`` over the clip file, exactly what
    ``facepro process`` runs: the capture thread decodes into the frame ring (lossless, so
    all 275 frames, none dropped), the worker detects, embeds, matches against a gallery with
    Lin-Manuel Miranda enrolled, and records events (SQLite rows + JPEG snapshots). Decoding
    is included in the time.
(b) model-only limit: bare ONNX Runtime sessions at our detector input shape and, per frame,
    as many embedder runs as (a) makes (``scripts/bench_models.py``): with embedding reuse on
    (``recognition.reuse_embedding_frames``, shipped 4) a face that stays put is not
    embedded again on every frame, so that is fewer than the faces found.
(c) insightface reference path per frame: model_zoo SCRFD ``detect`` + ``norm_crop`` +
    ``get_feat`` (``scripts/bench_models.py``).
    (b) and (c) run on frames decoded beforehand, with the same session options as (a).
(d) Python heap per frame in steady state (tracemalloc) for (a) and (c): the peak traced
    memory above the previous frame's end (temporaries included), and the net growth.
    For (a) measured in a second pass (tracemalloc slows Python), all threads included.

(a), (b) and (c) run in rounds with the order rotated (a b c, b c a, c a b, ...) so that on a
shared machine each sees the same mix of load; the report gives each round and the medians.

    .venv/bin/python scripts/bench_pipeline.py [--threads N] [--rounds N] [--det-max-side N] [--reuse-frames N]
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
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_models  # noqa: E402

from edge.config import load_settings  # noqa: E402
from edge.db.connection import connect  # noqa: E402
from edge.db.migrate import migrate_database  # noqa: E402
from edge.pipeline.detector import DEFAULT_DET_MAX_SIDE  # noqa: E402
from edge.pipeline.enroll import enroll  # noqa: E402
from edge.pipeline.pack import load_model_pack  # noqa: E402
from edge.pipeline.service import process_file  # noqa: E402

SHARED = REPO.parent / "shared"
CLIP = SHARED / "media" / "short_hamilton_clip.mp4"
MODELS = SHARED / "models" / "face"
LIN_PHOTO = SHARED / "media" / "lin-manuel-miranda.png"
WARMUP_FRAMES = 10
KIB = 1024


def make_settings(workdir: Path, threads: int, det_max_side: int, reuse_frames: int) -> Any:
    config = workdir / "settings.json"
    config.write_text(json.dumps({
        "device": {"id": "bench", "name": "bench"},
        "paths": {"data_dir": str(workdir / "data"), "models_dir": str(MODELS)},
        "pipeline": {"intra_op_threads": threads, "det_max_side": det_max_side},
        "recognition": {"reuse_embedding_frames": reuse_frames},
        "events": {"min_free_mb": 0},
        "web": {"enabled": False}, "backup": {"schedule": None},
    }))
    settings = load_settings(config)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_database(settings)
    return settings


def pipeline_run(settings: Any, pack: Any, measure_heap: bool) -> dict[str, Any]:
    peaks: list[int] = []
    state = {"frames": 0, "before": 0, "baseline": 0}

    def hook(loop: Any, feed: Any, slot: Any) -> None:
        state["frames"] += 1
        if state["frames"] == WARMUP_FRAMES:
            tracemalloc.start()
            state["before"] = state["baseline"] = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        elif state["frames"] > WARMUP_FRAMES:
            current, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - state["before"])
            state["before"] = current
            tracemalloc.reset_peak()

    try:
        summary = process_file(settings, CLIP, "bench", pack=pack, frame_hook=hook if measure_heap else None)
        growth = tracemalloc.get_traced_memory()[0] - state["baseline"] if measure_heap else 0
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    if not measure_heap:
        return summary
    return bench_models.heap_summary(peaks, growth) | {
        "note": "all threads (capture + worker); the max includes event snapshots (JPEG encode)"}


def embedder_runs_per_frame(settings: Any, pack: Any) -> list[int]:
    """How many faces (a) embeds in each frame (a run of its own, with the same settings)."""
    counts: list[int] = []
    seen = {"embedded": 0}

    def hook(loop: Any, feed: Any, slot: Any) -> None:
        counts.append(loop.faces_embedded - seen["embedded"])
        seen["embedded"] = loop.faces_embedded

    process_file(settings, CLIP, "count", pack=pack, frame_hook=hook, record_events=False)
    return counts


def run_rounds(threads: int, rounds: int, frames: Sequence[np.ndarray], pack: Any, det_max_side: int,
               reuse_frames: int) -> dict[str, Any]:
    """(a), (b), (c) in ``rounds`` rounds, the order rotated each round, so that on a shared
    machine each path sees the same mix of load; medians and per-round ratios reported."""
    fps: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    last: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        settings = make_settings(Path(tmp), threads, det_max_side, reuse_frames)
        conn = connect(settings.db_path)
        try:
            enroll(conn, pack, settings.data_dir, "Lin-Manuel Miranda", [LIN_PHOTO])
        finally:
            conn.close()
        crops = embedder_runs_per_frame(settings, pack)
        order = ["a", "b", "c"]
        per_round = []
        for r in range(rounds):
            this_round: dict[str, float] = {}
            for path in order[r % 3:] + order[: r % 3]:
                if path == "a":
                    last["a"] = pipeline_run(settings, pack, measure_heap=False)
                elif path == "b":
                    last["b"] = bench_models.bench_model_only(frames, crops, MODELS, None, threads,
                                                              max_side=det_max_side)
                else:
                    last["c"] = bench_models.bench_insightface_reference(frames, MODELS, None, threads,
                                                                         measure_heap=False)
                fps[path].append(last[path]["fps"])
                this_round[path] = last[path]["fps"]
            per_round.append({"fps": this_round, "a_vs_c": round(this_round["a"] / this_round["c"], 2),
                              "a_vs_b": round(this_round["a"] / this_round["b"], 3),
                              "load_average": [round(x, 2) for x in os.getloadavg()]})
        a_heap = pipeline_run(settings, pack, measure_heap=True)
    c_heap = bench_models.heap_per_frame(
        bench_models.insightface_frame_fn(*bench_models.load_insightface_reference(MODELS, None, threads)), frames)
    med = {k: round(statistics.median(v), 2) for k, v in fps.items()}
    a = last["a"]
    return {
        "rounds": per_round,
        "a_pipeline": {"fps_median": med["a"]} | {k: a[k] for k in (
            "frames", "frames_processed", "frames_dropped", "faces", "faces_embedded", "events", "events_by_person",
            "stages")}
        | {"detector_input_shape": pack.detector.input_shape, "provider": pack.detector.provider},
        "b_model_only_limit": {"fps_median": med["b"], "embedder_runs": int(sum(crops))}
        | {k: v for k, v in last["b"].items() if k not in ("fps", "faces")},
        "c_insightface_reference": {"fps_median": med["c"]} | {k: v for k, v in last["c"].items() if k != "fps"},
        "d_heap_per_frame": {"a_pipeline": a_heap, "c_insightface_reference": c_heap},
        "ratios_of_medians": {"a_vs_c": round(med["a"] / med["c"], 2), "a_vs_b": round(med["a"] / med["b"], 3)},
        "targets": {
            "a_vs_c_min": 2.0, "a_vs_b_min": 0.9, "heap_per_frame_max_bytes": 64 * KIB,
            "a_vs_c_met": med["a"] >= 2.0 * med["c"],
            "a_vs_b_met": med["a"] >= 0.9 * med["b"],
            "heap_met": a_heap["peak_bytes_per_frame_median"] < 64 * KIB,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads for all paths (0 = default)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), (b), (c), order rotated (default 3)")
    parser.add_argument("--det-max-side", type=int, default=DEFAULT_DET_MAX_SIDE,
                        help="pipeline.det_max_side for (a) and (b): the detector input's longer side "
                             f"(default {DEFAULT_DET_MAX_SIDE}, the shipped setting)")
    parser.add_argument("--reuse-frames", type=int, default=None,
                        help="recognition.reuse_embedding_frames for (a) (default: the shipped setting; "
                             "0 embeds every face on every frame)")
    args = parser.parse_args(argv)

    frames = bench_models.decode_frames(CLIP)
    pack = load_model_pack(MODELS, threads=args.threads, det_max_side=args.det_max_side)
    faces = bench_models.count_faces(pack, frames)
    reuse_frames = args.reuse_frames
    if reuse_frames is None:
        reuse_frames = load_settings(None, env={})["recognition.reuse_embedding_frames"]
    started = time.time()
    result = run_rounds(args.threads, max(args.rounds, 1), frames, pack, args.det_max_side, reuse_frames)
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "clip": str(CLIP),
        "clip_frames": len(frames),
        "faces_in_clip": int(sum(faces)),
        "threads": args.threads,
        "det_max_side": args.det_max_side,
        "reuse_embedding_frames": reuse_frames,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
    } | result
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
