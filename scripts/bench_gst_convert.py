#!/usr/bin/env python3
"""What the GStreamer source costs per camera, converting every frame to BGR in the pipeline
(``videoconvert ! BGR``, as it did) or handing the decoder's YUV to the appsink and converting
only the frames the detect gate samples (as it does now). JSON out.

A GStreamer RTSP server (tests/support/rtsp.py, its own process, not measured) plays the shared
clip at 15 fps, H.264, at 640x360, 1280x720 and 1920x1080. The reader is the service's own
``GstCapture`` in this process, software decoding; it grabs every frame and retrieves one in
three into a ring-sized array, what the capture thread does at ``detect_fps: 5``. Reported per
size and mode: CPU of this process (user + system, all threads) in % of one core, frames
grabbed and retrieved per second.

    .venv/bin/python scripts/bench_gst_convert.py [--seconds 15] [--sizes 640x360,1280x720,1920x1080]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.pipeline import gst  # noqa: E402
from edge.pipeline.gst_platform import PARSERS  # noqa: E402
from tests.conftest import CLIP  # noqa: E402
from tests.support.rtsp import RtspCamera, rtsp_available  # noqa: E402

FPS = 15
SAMPLE_EVERY = 3  # detect_fps 5 of 15


def encode(size: str, out: Path) -> Path:
    width, height = size.split("x")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "3", "-i", str(CLIP), "-an", "-vf",
                    f"scale={width}:{height},fps={FPS}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
                    "-pix_fmt", "yuv420p", str(out)], check=True, capture_output=True, timeout=600)
    return out


def measure(cap: Any, seconds: float) -> dict[str, Any]:
    for _ in range(FPS):  # settle: the first second (connection, first keyframe) is not measured
        cap.grab()
    slot: np.ndarray | None = None
    grabbed = retrieved = 0
    start_cpu, start = os.times(), time.monotonic()
    while time.monotonic() - start < seconds:
        if not cap.grab():
            break
        grabbed += 1
        if grabbed % SAMPLE_EVERY == 0:
            ok, frame = cap.retrieve(slot)
            if ok:
                slot = frame
                retrieved += 1
    elapsed, end_cpu = time.monotonic() - start, os.times()
    cpu = (end_cpu.user - start_cpu.user) + (end_cpu.system - start_cpu.system)
    return {"cpu_pct_of_one_core": round(100 * cpu / elapsed, 1), "grabbed_fps": round(grabbed / elapsed, 1),
            "retrieved_fps": round(retrieved / elapsed, 1), "seconds": round(elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    args = parser.parse_args()
    why = rtsp_available() or (None if gst.available() else gst.unavailable_reason())
    if why:
        print(json.dumps({"error": why}))
        return 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            server = RtspCamera(encode(size, Path(tmp) / f"{size}.mp4")).start()
            try:
                every_frame = (f"rtspsrc location={server.url()} protocols=tcp latency=200 ! {PARSERS['h264']} ! "
                               "avdec_h264 ! videoconvert ! video/x-raw,format=BGR ! appsink")
                for mode in ("bgr in the pipeline (before)", "yuv, converted on retrieve (now)"):
                    if mode.startswith("bgr"):
                        cap = gst.GstCapture(launch=every_frame)
                    else:
                        cap = gst.GstCapture(url=server.url(), platform="software")
                    try:
                        results.append({"size": size, "mode": mode, "appsink_format": cap.pixel_format,
                                        **measure(cap, args.seconds)})
                    finally:
                        cap.release()
            finally:
                server.stop()
    print(json.dumps({"fps": FPS, "retrieved_one_in": SAMPLE_EVERY, "decoder": "avdec_h264 (software)",
                      "cpu_count": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
