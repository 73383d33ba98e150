#!/usr/bin/env python3
"""Camera load: what a camera costs at rest and while people pass, gated and ungated (JSON out).

Each run starts the real service (``facepro run`` in its own process) with N cameras showing
"a day at a door" (scripts/doorway.py: 34 s of an empty noisy scene with the lights dimming at
19 s, then people passing on cameras 0 and 1 for 9.2 s, then the empty scene again), with the
status page polled once a second, MQTT to a real Mosquitto and telemetry on, Lin-Manuel Miranda
enrolled. MJPEG cameras are served on loopback at 15 fps; H.264 runs play MP4 files at their
native rate (rest only). Measured per run:

* CPU of the service process (user + system time, all threads, from /proc; not wall clock)
  over the rest window (6-33 s, the lighting change included) and the passage window, in
  cores and per camera;
* frames per second that reached the detector, frames captured and dropped, per window;
* the recognitions per camera from the service's MQTT ``events`` topic (the hub's view), and
  the latency from the first frame of the passage (sent by the camera server) to the first
  event of the camera.

Gated and ungated runs of the same N are compared: people lost, first-event delay. A
baseline run without cameras gives what the service costs by itself. The machine is shared:
``load`` reports the CPU the rest of the machine used during each run.

    .venv/bin/python scripts/bench_cameras.py [--cameras 1,8] [--runs mjpeg,h264,hd,ungated,baseline]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import doorway  # noqa: E402

from edge.config import load_settings  # noqa: E402
from edge.db.connection import connect  # noqa: E402
from edge.db.migrate import migrate_database  # noqa: E402
from edge.pipeline.enroll import enroll  # noqa: E402
from edge.pipeline.pack import load_model_pack  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.mqtt_hub import Hub  # noqa: E402
from tests.support.procs import free_port  # noqa: E402
from tests.support.scenes import LIN_PHOTO, MODELS  # noqa: E402

DEVICE = "bench-cameras"
LIN = "Lin-Manuel Miranda"
REST = (6.0, 33.0)
PASSAGE = (doorway.PASSAGE_AT, doorway.PASSAGE_AT + 9.2)
BUSY = 2  # cameras 0 and 1 see people


class Sampler(threading.Thread):
    """Service CPU seconds and machine-wide CPU seconds, four times a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                cpu = self.proc.cpu_times()
            except psutil.Error:
                return
            total = psutil.cpu_times()
            self.samples.append((time.monotonic(), cpu.user + cpu.system,
                                 total.user + total.system + total.nice + total.irq + total.softirq))
            self.stop.wait(0.25)

    def cores(self, t0: float, t1: float) -> tuple[float, float]:
        """(service cores, rest-of-machine cores) over [t0, t1]."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return float("nan"), float("nan")
        (a, ca, ta), (b, cb, tb) = inside[0], inside[-1]
        return (cb - ca) / (b - a), ((tb - ta) - (cb - ca)) / (b - a)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read())


def write_settings(tmp: Path, name: str, cameras: list[dict[str, Any]], gated: bool, mqtt_port: int,
                   web_port: int) -> Path:
    data_dir = tmp / f"data-{name}"
    data = {
        "device": {"id": DEVICE, "name": "bench cameras"},
        "paths": {"data_dir": str(data_dir), "models_dir": str(MODELS)},
        "cameras": cameras,
        "pipeline": {} if gated else {"detect_fps": 0, "motion": {"enabled": False}},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mqtt_port},
        "web": {"host": "127.0.0.1", "port": web_port, "public_read": True},
        "backup": {"schedule": None},
    }
    path = tmp / f"settings-{name}.json"
    path.write_text(json.dumps(data, indent=2))
    settings = load_settings(path, env={})
    migrate_database(settings)
    if cameras:
        pack = load_model_pack(MODELS)
        conn = connect(settings.db_path)
        try:
            enroll(conn, pack, settings.data_dir, LIN, [LIN_PHOTO])
        finally:
            conn.close()
    return path


def run_service(tmp: Path, name: str, cameras: list[dict[str, Any]], gated: bool, broker: Mosquitto,
                day_s: float, opened_at: dict[int, float] | None) -> dict[str, Any]:
    web_port = free_port()
    settings = write_settings(tmp, name, cameras, gated, broker.port, web_port)
    hub = Hub(broker.port, (f"facepro/{DEVICE}/events",)).start()
    log = open(tmp / f"{name}.log", "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPRO_")}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(settings), "run"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    sampler = Sampler(proc.pid)
    sampler.start()
    status_url = f"http://127.0.0.1:{web_port}/api/status"
    polls: list[tuple[float, dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + 90
        while True:  # the status page is up and every camera delivers frames
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench_cameras: the service did not come up; see {tmp / (name + '.log')}")
            try:
                status = get_json(status_url)
                if all(c.get("online") for c in status["cameras"].get("data", [])):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        start = min(opened_at.values()) if opened_at else time.monotonic()
        if not cameras:
            start = time.monotonic() - REST[0]
        while time.monotonic() < start + day_s - 0.5:  # the status page as a technician keeps it open
            try:
                polls.append((time.monotonic(), {c["name"]: c for c in get_json(status_url)["cameras"]["data"]}))
            except OSError:
                pass
            time.sleep(1.0)
    finally:
        sampler.stop.set()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        hub.stop()
    events = [(m.at, m.json()) for m in hub.messages]
    return {"start": start, "sampler": sampler, "polls": polls, "events": events}


def window_figures(polls: list[tuple[float, dict[str, Any]]], t0: float, t1: float, names: list[str]
                   ) -> dict[str, Any]:
    inside = [p for p in polls if t0 <= p[0] <= t1]
    if len(inside) < 2:
        return {}
    (a, first), (b, last) = inside[0], inside[-1]

    def rate(key: str, name: str) -> float:
        return (last[name][key] - first[name][key]) / (b - a)

    return {"detector_fps": {n: round(rate("frames_detected", n), 2) for n in names},
            "capture_fps": {n: round(rate("frames_captured", n), 2) for n in names},
            "frames_dropped": sum(last[n]["frames_dropped"] - first[n]["frames_dropped"] for n in names)}


def one_run(tmp: Path, broker: Mosquitto, label: str, count: int, codec: str, size: tuple[int, int], gated: bool,
            rest_only: bool) -> dict[str, Any]:
    day_s = REST[1] + 1 if rest_only else doorway.DAY_S
    quiet = doorway.day_frames(size, busy=False, day_s=day_s)
    busy = quiet if rest_only else doorway.day_frames(size, busy=True, day_s=day_s)
    days = [busy if i < BUSY else quiet for i in range(count)]
    server = None
    if codec == "mjpeg":
        encoded = {id(quiet): doorway.jpegs(quiet)}
        encoded.setdefault(id(busy), doorway.jpegs(busy))
        server = doorway.MjpegCameras([encoded[id(d)] for d in days]).start()
        sources = [server.url(i) for i in range(count)]
    else:
        files = {id(quiet): doorway.write_h264(quiet, tmp / f"quiet-{size[0]}.mp4")}
        files.setdefault(id(busy), doorway.write_h264(busy, tmp / f"busy-{size[0]}.mp4"))
        sources = [str(files[id(d)]) for d in days]
    cameras = [{"name": f"cam{i}", "source": src, "stall_timeout_s": 5.0} for i, src in enumerate(sources)]
    try:
        run = run_service(tmp, label, cameras, gated, broker, day_s, server.opened_at if server else None)
    finally:
        if server is not None:
            server.stop()
    start, sampler, names = run["start"], run["sampler"], [c["name"] for c in cameras]
    rest_cores, rest_others = sampler.cores(start + REST[0], start + REST[1])
    result: dict[str, Any] = {
        "run": label, "cameras": count, "codec": codec, "size": f"{size[0]}x{size[1]}", "fps": doorway.FPS,
        "gated": gated,
        "rest": {"service_cores": round(rest_cores, 4), "per_camera_percent_of_a_core": round(100 * rest_cores / count, 2),
                 **window_figures(run["polls"], start + REST[0], start + REST[1], names),
                 "rest_of_machine_cores": round(rest_others, 2)},
    }
    if server is not None:
        result["frames_sent_late"] = sum(server.late)
    if not rest_only:
        cores, others = sampler.cores(start + PASSAGE[0], start + PASSAGE[1])
        result["passage"] = {"service_cores": round(cores, 4), **window_figures(
            run["polls"], start + PASSAGE[0], start + PASSAGE[1] + 1, names), "rest_of_machine_cores": round(others, 2)}
        lin_frame = first_recognisable(busy)
        result["lin_first_frame_s"] = round(lin_frame / doorway.FPS, 3)
        result["recognitions"] = recognitions(run["events"], server.opened_at if server else {}, count, lin_frame)
    return result


def first_recognisable(frames: list[Any], threshold: float = 0.4) -> int:
    """The first frame of the passage in which Lin-Manuel Miranda can be recognised at all
    (his face found and matched above the threshold, every frame looked at): his face's first frame."""
    import cv2
    import numpy as np

    pack = load_model_pack(MODELS)
    photo = cv2.imread(str(LIN_PHOTO))
    lin = np.array(pack.embedder.embed(photo, pack.detector.detect(photo).kps[:1]), copy=True)[0]
    start = round(doorway.PASSAGE_AT * doorway.FPS)
    for k, frame in enumerate(frames[start:start + round(9.2 * doorway.FPS)]):
        faces = pack.detector.detect(frame)
        if len(faces) and float((np.array(pack.embedder.embed(frame, faces.kps)) @ lin).max()) >= threshold:
            return k
    raise SystemExit("bench_cameras: Lin-Manuel Miranda is never recognisable in the passage")


def recognitions(events: list[tuple[float, dict[str, Any]]], opened_at: dict[int, float], count: int,
                 lin_frame: int) -> dict[str, Any]:
    """Per busy camera: people recognised after the passage began, unknown-face events, the
    delay from the passage's first frame (faces in it) to the camera's first event, and from
    Lin-Manuel Miranda's first recognisable frame to his event."""
    out: dict[str, Any] = {}
    for i in range(min(count, BUSY)):
        passage_at = opened_at.get(i, 0.0) + doorway.PASSAGE_AT
        lin_at = passage_at + lin_frame / doorway.FPS
        mine = [(at, e) for at, e in events if e.get("camera") == f"cam{i}"]
        after = [(at, e) for at, e in mine if at >= passage_at]
        first_any = min((at for at, _ in after), default=None)
        first_lin = min((at for at, e in after if e.get("person") == LIN), default=None)
        out[f"cam{i}"] = {"people": sorted({e["person"] for _, e in after if e.get("person")}),
                          "unknown_events": sum(1 for _, e in after if not e.get("person")),
                          "events_before_passage": len(mine) - len(after),
                          "first_event_s": None if first_any is None else round(first_any - passage_at, 3),
                          "lin_latency_s": None if first_lin is None else round(first_lin - lin_at, 3)}
    quiet = [e for at, e in events if e.get("camera") not in out]
    out["quiet_cameras_events"] = len(quiet)
    return out


def compare(gated: dict[str, Any], ungated: dict[str, Any]) -> dict[str, Any]:
    """Recognitions lost by gating and how much later the first event came, per busy camera."""
    lost, delays, lin_delays = {}, {}, {}
    for cam, seen in ungated.get("recognitions", {}).items():
        if not isinstance(seen, dict):
            continue
        mine = gated["recognitions"].get(cam, {})
        lost[cam] = sorted(set(seen["people"]) - set(mine.get("people", [])))
        if seen["first_event_s"] is not None and mine.get("first_event_s") is not None:
            delays[cam] = round(mine["first_event_s"] - seen["first_event_s"], 3)
        if seen["lin_latency_s"] is not None and mine.get("lin_latency_s") is not None:
            lin_delays[cam] = round(mine["lin_latency_s"] - seen["lin_latency_s"], 3)
    return {"cameras": gated["cameras"], "lost": lost, "first_event_later_s": delays,
            "lin_event_later_s": lin_delays}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="1,8", help="camera counts for the MJPEG runs (default 1,8)")
    parser.add_argument("--runs", default="baseline,mjpeg,ungated,h264,hd",
                        help="which runs: baseline, mjpeg (gated), ungated, h264 (rest), hd (1280x720 rest)")
    parser.add_argument("--ungated-max", type=int, default=8, help="largest N also run ungated (default 8)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.cameras.split(",") if n.strip()]
    runs = set(args.runs.split(","))
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "load_before": [round(x, 2) for x in os.getloadavg()]},
                              "runs": [], "comparisons": []}
    with tempfile.TemporaryDirectory(prefix="bench-cameras-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "mosquitto").mkdir()
        broker = Mosquitto(tmp / "mosquitto").start()
        try:
            if "baseline" in runs:
                run = run_service(tmp, "baseline", [], True, broker, REST[1], None)
                cores, others = run["sampler"].cores(run["start"] + REST[0], run["start"] + REST[1])
                report["baseline"] = {"service_cores": round(cores, 4), "rest_of_machine_cores": round(others, 2)}
            small = (640, 360)
            for n in counts:
                by_gate = {}
                for gated in (True, False):
                    if (gated and "mjpeg" in runs) or (not gated and "ungated" in runs and n <= args.ungated_max):
                        label = f"mjpeg-{n}-{'gated' if gated else 'ungated'}"
                        by_gate[gated] = one_run(tmp, broker, label, n, "mjpeg", small, gated, rest_only=False)
                        report["runs"].append(by_gate[gated])
                        print(json.dumps(by_gate[gated]), file=sys.stderr)
                if True in by_gate and False in by_gate:
                    report["comparisons"].append(compare(by_gate[True], by_gate[False]))
            if "h264" in runs:
                report["runs"].append(one_run(tmp, broker, "h264-1-rest", 1, "h264", small, True, rest_only=True))
            if "hd" in runs:
                for codec in ("mjpeg", "h264"):
                    report["runs"].append(one_run(tmp, broker, f"{codec}-1-hd-rest", 1, codec, (1280, 720), True,
                                                  rest_only=True))
        finally:
            broker.stop()
    if "baseline" in report:  # what each camera adds to the service's own cost
        base = report["baseline"]["service_cores"]
        for run in report["runs"]:
            rest = run["rest"]
            rest["per_camera_above_baseline_percent"] = round(100 * (rest["service_cores"] - base) / run["cameras"], 2)
    gated_rest = sorted((r["cameras"], r["rest"]["service_cores"]) for r in report["runs"]
                        if r["codec"] == "mjpeg" and r["gated"] and r["size"] == "640x360")
    if len(gated_rest) >= 2 and gated_rest[-1][0] > gated_rest[0][0]:  # one more camera at rest costs
        (n0, c0), (n1, c1) = gated_rest[0], gated_rest[-1]
        report["marginal_camera_at_rest_percent_of_a_core"] = round(100 * (c1 - c0) / (n1 - n0), 2)
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
