"""Stage latencies and fps from real pipeline runs agree with the frames and the wall time.

1. ``facepro process CLIP --json`` on the shared clip: the command's own summary (frames,
   fps, per-stage counts and latencies, all from ``edge.metrics``) must be
   internally consistent with the wall time.
2. The telemetry component sampling a real (shortened) pipeline run in-process: its camera
   counters, stage counts and fps history add up to what the pipeline reports.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLIP, FACEPRO, MODELS_DIR, subprocess_env
from tests.support.waiting import wait_until

INFERENCE_STAGES = ("preprocess", "detect", "embed", "match", "persist", "publish")
CLIP_FRAMES = 275  # ../shared/media/README.md


def process_command_registered() -> bool:
    from edge.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return "process" in sub.choices


needs_process = pytest.mark.skipif(not process_command_registered(),
                                   reason="'facepro process' is not registered in edge.cli yet")


@pytest.fixture(scope="module")
def process_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not CLIP.is_file() or not MODELS_DIR.is_dir():
        pytest.skip(f"shared media/models not found ({CLIP}, {MODELS_DIR})")
    work = tmp_path_factory.mktemp("process")
    settings = work / "settings.json"
    # a smaller detector input halves the CPU time of this run; every frame is still processed
    settings.write_text(json.dumps({"device": {"id": "test-device"},
                                    "paths": {"data_dir": str(work / "data"), "models_dir": str(MODELS_DIR)},
                                    "pipeline": {"det_max_side": 320}}))
    started = time.perf_counter()
    proc = subprocess.run([*FACEPRO, "--config", str(settings), "process", str(CLIP), "--json"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=600)
    wall = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    summary["_command_wall_s"] = wall
    return summary


@needs_process
def test_process_counts_match_frames(process_run: dict) -> None:
    s = process_run
    assert s["frames"] == CLIP_FRAMES
    assert s["frames_dropped"] == 0 and s["frames_processed"] == s["frames"]
    stages = s["stages"]
    assert stages["decode"]["count"] == s["frames"]
    for stage in ("preprocess", "detect"):
        assert stages[stage]["count"] == s["frames_processed"], stage
    for stage in ("embed", "match"):  # frames with at least one face
        assert 0 < stages[stage]["count"] <= s["frames_processed"], stage
    assert s["faces"] >= stages["embed"]["count"]
    for stage in ("persist", "publish"):
        if stage in stages:
            assert stages[stage]["count"] == s["events"], stage


@needs_process
def test_process_fps_and_latencies_agree_with_wall_time(process_run: dict) -> None:
    s = process_run
    seconds = s["seconds"]
    assert 0 < seconds <= s["_command_wall_s"]
    assert s["fps"] == pytest.approx(s["frames_processed"] / seconds, rel=0.005, abs=0.01)
    stages = s["stages"]
    total_ms = {name: st["mean_ms"] * st["count"] for name, st in stages.items()}
    # the inference stages run one after another on one thread: together they fit in the
    # wall time, and on a busy CPU they fill most of it (the loop waits little for frames)
    inference_s = sum(total_ms.get(name, 0.0) for name in INFERENCE_STAGES) / 1000
    assert inference_s <= seconds * 1.02
    assert inference_s >= seconds * 0.5
    # decoding runs on the source thread, concurrently: it also fits in the wall time
    assert 0 < total_ms["decode"] / 1000 <= seconds * 1.02
    for name, st in stages.items():
        assert 0 <= st["p50_ms"] <= st["p95_ms"], name
        assert st["mean_ms"] > 0, name
    assert stages["detect"]["p50_ms"] * s["frames_processed"] / 1000 <= seconds * 1.02


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    import cv2

    if not CLIP.is_file():
        pytest.skip(f"shared clip not found: {CLIP}")
    path = tmp_path_factory.mktemp("clip") / "door.avi"
    cap = cv2.VideoCapture(str(CLIP))
    writer = None
    frames = 0
    while frames < 30:
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
        writer.write(frame)
        frames += 1
    cap.release()
    writer.release()
    return path, frames


def test_telemetry_samples_a_real_pipeline_run(write_settings, short_clip: tuple[Path, int]) -> None:
    from edge.config import load_settings
    from edge.context import ServiceContext
    from edge.db.migrate import migrate_database
    from edge.pipeline.service import process_file
    from edge.telemetry.component import Telemetry

    clip, frames = short_clip
    settings = load_settings(write_settings({"telemetry": {"sample_interval_s": 0.25},
                                             "pipeline": {"det_max_side": 320}}), env={})
    migrate_database(settings)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx)
    telemetry.start()
    try:
        summary = process_file(settings, clip, "door", metrics=ctx.metrics, record_events=False)
        time.sleep(0.6)  # two more samples after the end: the tail of the run is counted
        snap = telemetry.sample()
        history = telemetry.history(600)
    finally:
        telemetry.stop()
    assert summary["frames"] == frames and summary["frames_processed"] == frames

    (camera,) = snap["cameras"]
    assert camera["name"] == "door"
    assert camera["frames_processed"] == summary["frames_processed"]
    assert camera["frames_captured"] == summary["frames"]
    assert camera["frames_dropped"] == 0
    assert snap["stages"]["detect"]["count"] == summary["stages"]["detect"]["count"] == frames
    assert snap["stages"]["detect"]["p50_s"] * 1000 == pytest.approx(summary["stages"]["detect"]["p50_ms"], abs=0.01)

    # integrating the processed-fps chart over time gives back the frames processed
    # (each point is the rate since the sample before it; the camera's first point follows a
    # sample that had no counter for it yet)
    points = history["fps.door"]
    sample_times = sorted({t for series in history.values() for t, _ in series})
    before = [t for t in sample_times if t < points[0][0]]
    # the sample before the camera's first point, as taken (a loaded box delays samples)
    times = [before[-1] if before else points[0][0] - 0.25] + [t for t, _ in points]
    integral = sum(v * (times[i + 1] - times[i]) for i, (_, v) in enumerate(points))
    assert integral == pytest.approx(frames, rel=0.05, abs=1), points
    peak = max(v for _, v in points)
    assert peak >= summary["fps"] * 0.5
    assert "stage.detect.p95_s" in history


def test_telemetry_reads_the_running_pipeline_part(write_settings, short_clip: tuple[Path, int]) -> None:
    """The service's Pipeline part on a file camera: online with fps while it plays, then
    offline at the end of the file, which raises camera_offline once."""
    from edge.config import load_settings
    from edge.context import ServiceContext
    from edge.db.migrate import migrate_database
    from edge.pipeline.service import Pipeline
    from edge.telemetry.component import Telemetry

    clip, frames = short_clip
    settings = load_settings(write_settings({
        "cameras": [{"name": "door", "source": str(clip), "loop": False, "rate": "native"}],
        "pipeline": {"det_max_side": 320},
        "telemetry": {"history_retention_days": 0},
        "alerts": {"camera_offline": {"enabled": True, "threshold": 0, "duration_s": 0.5, "hysteresis": 0}},
    }), env={})
    migrate_database(settings)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    published: list[dict] = []
    ctx.bus.subscribe("alert", lambda p: published.append(p) if p["name"] == "camera_offline" else None)
    changes: list[bool] = []
    ctx.bus.subscribe("camera", lambda p: changes.append(p["online"]))
    pipeline = Pipeline(ctx)
    ctx.pipeline = pipeline  # as edge.service.build_components wires it
    telemetry = Telemetry(ctx, persist=False)
    pipeline.start()
    snaps = []
    try:
        # the camera is offline until its first frame: sampling from before then would raise
        # camera_offline (duration_s 0.5) on a slow start, before the file ever played
        wait_until(lambda: True in changes, 60, "camera door online")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not published:
            snaps.append(telemetry.sample())
            time.sleep(0.2)
    finally:
        pipeline.stop()
    assert [(p["subject"], p["state"]) for p in published] == [("door", "raised")]
    online = [s["cameras"][0] for s in snaps if s["cameras"] and s["cameras"][0]["online"]]
    assert online and max(c["fps_capture"] for c in online) > 0
    last = snaps[-1]["cameras"][0]
    assert last["online"] is False and last["frames_captured"] == frames
    models = snaps[-1]["models"]
    assert models["available"] is True
    assert models["detector"]["provider"] == models["embedder"]["provider"] == "CPUExecutionProvider"


def test_each_camera_runs_at_its_own_det_max_side(write_settings, short_clip: tuple[Path, int]) -> None:
    """cameras[].det_max_side reaches the detector through the service's Pipeline part:
    'lobby' asks for 640 (640x384), 'door' keeps pipeline.det_max_side 320 (320x192); the
    camera status says which."""
    from edge.config import load_settings
    from edge.context import ServiceContext
    from edge.db.migrate import migrate_database
    from edge.pipeline.service import Pipeline

    clip, frames = short_clip
    settings = load_settings(write_settings({
        "cameras": [{"name": "door", "source": str(clip), "rate": "max"},
                    {"name": "lobby", "source": str(clip), "rate": "max", "det_max_side": 640}],
        "pipeline": {"det_max_side": 320},
    }), env={})
    migrate_database(settings)
    pipeline = Pipeline(ServiceContext(settings=settings, device_id="test-device"))
    pipeline.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(c["frames_processed"] for c in pipeline.cameras_status()):
            time.sleep(0.2)
        status = {c["name"]: c for c in pipeline.cameras_status()}
    finally:
        pipeline.stop()
    assert status["door"]["frames_processed"] and status["lobby"]["frames_processed"]
    assert status["door"]["detector_input"] == "320x192"
    assert status["lobby"]["detector_input"] == "640x384"
