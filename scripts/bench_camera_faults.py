#!/usr/bin/env python3
"""Camera faults: how long until a fault is noticed and how long until frames flow again (JSON out).

One real RTSP camera (Debian's GStreamer RTSP server on loopback, H.264) read the way the
pipeline reads it (a capture thread and the 0.5 s stall check), through OpenCV's FFmpeg and
through the service's own GStreamer source. Faults, each on a fresh camera:

* ``stall``: the server is SIGSTOPped (a hung camera; the TCP connection stays open), then resumed;
* ``pulled_cable``: a relay between the two stops forwarding, with no FIN or RST, then forwards again;
* ``reboot``: the server is killed, stays down ``--down-s`` seconds, and comes back on its port;
* ``damaged``: a bitstream with about one byte in 20,000 changed, played for ``--damaged-s`` seconds.

Per fault: detection (fault -> camera offline), recovery (camera back -> online), state changes
while the fault lasts (flapping), frames taken during it, reconnects; for the damaged stream the
state changes, reconnects and decode errors. Times include the capture thread's own waits and
the stall check's tick; ``stall_timeout_s`` is 10 s, as shipped.

    .venv/bin/python scripts/bench_camera_faults.py [--backends ffmpeg,gstreamer] [--down-s 45]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import CLIP  # noqa: E402
from tests.support.camera_run import WatchedCamera  # noqa: E402
from tests.support.relay import Relay  # noqa: E402
from tests.support.rtsp import RtspCamera, encode_clip, rtsp_available  # noqa: E402

STALL_S = 10.0


def wait_online(cam: WatchedCamera, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cam.status
        if status["online"] and status["frames_captured"] > 10:
            return
        time.sleep(0.05)
    raise RuntimeError(f"camera never came online: {cam.status}")


def fault_run(fault: str, backend: str, clip: Path, down_s: float, hold_s: float) -> dict[str, Any]:
    server = RtspCamera(clip).start()
    relay = Relay(server.port).start() if fault == "pulled_cable" else None
    url = f"rtsp://127.0.0.1:{relay.port}/stream" if relay else server.url()
    camera = {"name": fault, "source": url, "stall_timeout_s": STALL_S, "backend": backend}
    inject: Callable[[], object]
    clear: Callable[[], object]
    if relay is not None:  # a pulled cable: the relay drops all traffic, no FIN/RST
        inject, clear = relay.blackhole, relay.restore
    elif fault == "stall":  # a hung camera: SIGSTOP with the connection open
        inject, clear = server.pause, server.resume
    else:  # a reboot
        inject, clear = server.stop, server.start
    try:
        with WatchedCamera(camera) as cam:
            wait_online(cam)
            reconnects = cam.status["reconnects"]
            t0 = time.monotonic()
            inject()
            detected = cam.first_change(False, t0, STALL_S + 20)
            frozen = cam.status["frames_captured"]
            changes = len(cam.changes)
            away = max(hold_s, down_s) if fault == "reboot" else hold_s
            time.sleep(max(0.0, away - (time.monotonic() - t0)))  # detection may take longer than that
            during = {"state_changes": len(cam.changes) - changes,
                      "frames_taken": cam.status["frames_captured"] - frozen}
            t1 = time.monotonic()
            clear()
            recovered = cam.first_change(True, t1, 60)
            return {"fault": fault, "backend": backend, "detection_s": _r(detected), "recovery_s": _r(recovered),
                    "after_detection": during, "reconnects": cam.status["reconnects"] - reconnects,
                    "states": cam.states_since(t0)}
    finally:
        if relay:
            relay.stop()
        server.stop()


def damaged_run(backend: str, clip: Path, seconds: float) -> dict[str, Any]:
    server = RtspCamera(clip).start()
    try:
        with WatchedCamera({"name": "damaged", "source": server.url(), "stall_timeout_s": STALL_S,
                            "backend": backend}) as cam:
            wait_online(cam)
            start = cam.status
            changes = len(cam.changes)
            time.sleep(seconds)
            end = cam.status
            return {"fault": "damaged", "backend": backend, "seconds": seconds,
                    "state_changes": len(cam.changes) - changes, "reconnects": end["reconnects"] - start["reconnects"],
                    "frames": end["frames_captured"] - start["frames_captured"],
                    "decode_errors": end["decode_errors"] - start["decode_errors"], "online_at_end": end["online"]}
    finally:
        server.stop()


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="ffmpeg,gstreamer")
    parser.add_argument("--faults", default="stall,pulled_cable,reboot,damaged")
    parser.add_argument("--down-s", type=float, default=45.0, help="how long a rebooting camera is away (45)")
    parser.add_argument("--hold-s", type=float, default=25.0, help="how long a stall or pulled cable lasts (25)")
    parser.add_argument("--damaged-s", type=float, default=40.0, help="how long the damaged stream plays (40)")
    args = parser.parse_args()
    missing = rtsp_available()
    if missing:
        print(json.dumps({"error": missing}))
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = encode_clip(CLIP, Path(tmp) / "clip.mp4", "h264", loops=40)
        damaged = encode_clip(CLIP, Path(tmp) / "damaged.mp4", "h264", loops=20, noise=20000)
        for backend in args.backends.split(","):
            for fault in args.faults.split(","):
                if fault == "damaged":
                    results.append(damaged_run(backend, damaged, args.damaged_s))
                else:
                    results.append(fault_run(fault, backend, clip, args.down_s, args.hold_s))
                print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"stall_timeout_s": STALL_S, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
