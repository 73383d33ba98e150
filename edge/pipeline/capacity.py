"""How many cameras this device carries at their configured rates: a simple estimate.

Inputs are measured on the device: the detector's time per frame at each camera's input
size (:func:`time_detector`), and each camera's frame size and rate (``facepro doctor``
probes them). Two budgets:

* the inference worker is one thread: with every camera in motion at once it must run the
  detector ``sum(detect rate x detector time)`` seconds per second; above ``HEADROOM`` of a
  second, frames are dropped and faces found late;
* the CPU: each camera's decoding (``DECODE_MS_PER_MEGAPIXEL`` per frame, every frame) plus
  the conversion and motion check of each sampled frame plus the detector (which uses every
  core for its time per frame) must stay under ``HEADROOM`` of the cores.

Embedding (a few ms per face) is left out: it depends on how many faces are in view.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

# CPU time per decoded frame per megapixel (MJPEG over HTTP 0.93 ms, H.264 0.53 ms at
# 640x360) and per converted + motion-checked frame (0.75 ms at 640x360), measured on the
# 2-core CI machine (the MJPEG figure, the dearer one, is used).
DECODE_MS_PER_MEGAPIXEL = 4.0
SAMPLE_MS_PER_MEGAPIXEL = 3.5
HEADROOM = 0.8
ASSUMED_FPS = 30.0  # a camera whose rate the probe could not tell


@dataclass
class CameraLoad:
    name: str
    width: int
    height: int
    fps: float           # frames the camera sends per second
    detect_fps: float    # the cap (0: every frame)
    gating: bool
    idle_check_s: float
    det_ms: float        # detector wall time per frame at this camera's input size

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def detect_rate(self) -> float:
        """Frames per second the detector sees while the camera sees motion."""
        return min(self.detect_fps, self.fps) if self.detect_fps > 0 else self.fps


def estimate(cameras: list[CameraLoad], cores: int) -> dict[str, Any]:
    """Worker and CPU load at rest and with every camera in motion, and whether it fits."""
    worker_motion = sum(c.detect_rate * c.det_ms / 1000 for c in cameras)
    worker_rest = sum((1.0 / c.idle_check_s if c.gating else c.detect_rate) * c.det_ms / 1000 for c in cameras)
    decode = sum(c.fps * c.megapixels * DECODE_MS_PER_MEGAPIXEL / 1000 for c in cameras)
    sample = sum(c.detect_rate * c.megapixels * SAMPLE_MS_PER_MEGAPIXEL / 1000 for c in cameras)
    # the detector's wall time keeps every core busy (ONNX Runtime's intra-op threads)
    cpu_rest = decode + sample + worker_rest * cores
    cpu_motion = decode + sample + worker_motion * cores
    problems = []
    if worker_motion > HEADROOM:
        per_camera = worker_motion / max(len(cameras), 1)
        fits = int(HEADROOM / per_camera) if per_camera > 0 else len(cameras)
        problems.append(f"with every camera in motion the detector needs {worker_motion:.2f} s per second "
                        f"(one worker; {fits} of {len(cameras)} camera(s) in motion at once fit)")
    if cpu_rest > HEADROOM * cores:
        problems.append(f"at rest the cameras need {cpu_rest:.2f} of {cores} core(s)")
    elif cpu_motion > HEADROOM * cores and worker_motion <= HEADROOM:
        problems.append(f"with every camera in motion they need {cpu_motion:.2f} of {cores} core(s)")
    return {"cameras": len(cameras), "cores": cores, "worker_busy_motion": round(worker_motion, 3),
            "worker_busy_rest": round(worker_rest, 3), "cpu_cores_rest": round(cpu_rest, 3),
            "cpu_cores_motion": round(cpu_motion, 3), "carried": not problems, "problems": problems}


def time_detector(detector: Any, width: int, height: int, max_side: int | None = None, runs: int = 5) -> float:
    """Median wall milliseconds of one detection on a ``width`` x ``height`` frame (after a warm-up)."""
    frame = np.full((height, width, 3), 127, dtype=np.uint8)
    for _ in range(2):
        detector.detect(frame, None, None, max_side)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        detector.detect(frame, None, None, max_side)
        times.append((time.perf_counter() - t0) * 1000)
    return float(statistics.median(times))
