"""A damaged bitstream under ``facepro run``: decode errors counted and reported, not a lost
camera (no reconnect storm); FFmpeg's own lines go through the service's logger with the
camera's name, rate-limited."""
from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from edge.pipeline.native_log import BURST, TOTAL, WINDOW_S, LineLimiter
from tests.conftest import CLIP
from tests.support.procs import free_port
from tests.support.rtsp import RtspCamera, encode_clip, rtsp_available
from tests.support.service import start_service, stop_process, wait_for_line
from tests.support.waiting import wait_until


def test_line_limiter_holds_back_floods_and_reports_them() -> None:
    limiter = LineLimiter(window_s=10, burst=3, total=10)
    admitted = [limiter.admit(f"[OPENCV:FFMPEG:16] error while decoding MB {i} {i + 1}", now=0.0)[0]
                for i in range(100)]
    assert admitted.count(True) == 3  # one kind: numbers do not make a line new
    kinds = [limiter.admit(f"[h264 @ 0x{i:x}] kind {chr(97 + i % 26)}{chr(97 + i // 26)} here", now=1.0)[0]
             for i in range(50)]
    assert kinds.count(True) == 10 - 3  # the window's total
    admit, held = limiter.admit("[OPENCV:FFMPEG:16] error while decoding MB 1 2", now=10.5)
    assert admit is True and held == 97 + 43


@pytest.mark.skipif(bool(rtsp_available()), reason=str(rtsp_available()))
def test_damaged_stream_decodes_on_with_errors_counted_and_lines_rate_limited(tmp_path: Path, write_settings) -> None:
    damaged = encode_clip(CLIP, tmp_path / "noisy.mp4", "h264", loops=2, noise=20000)
    server = RtspCamera(damaged).start()
    web_port = free_port()
    config = write_settings({
        "cameras": [{"name": "gate", "source": server.url(), "stall_timeout_s": 2.0}],
        "paths": {"models_dir": str(tmp_path / "no-models")},
        "web": {"host": "127.0.0.1", "port": web_port, "public_read": True},
        "mqtt": {"enabled": False}, "backup": {"schedule": None},
    })
    proc = start_service(config)
    try:
        seen = wait_for_line(proc, "camera gate online", timeout=60)
        t0 = time.monotonic()
        time.sleep(8)

        def gate() -> dict:
            status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/status", timeout=10).read())
            return next(c for c in status["cameras"]["data"] if c["name"] == "gate")

        camera = wait_until(lambda: (lambda c: c if c["decode_errors"] > 0 else None)(gate()), 10, "decode errors")
        ran = time.monotonic() - t0
    finally:
        log = "".join(seen) + stop_process(proc)
        server.stop()
    assert camera["online"] is True and camera["reconnects"] == 0, camera
    assert camera["frames_captured"] > 60, camera
    assert log.count("camera gate online") == 1 and "camera gate offline" not in log, log
    lines = log.splitlines()
    native = [line for line in lines if re.match(r"\S+Z \w+ +ffmpeg: ", line)]
    assert native and all("camera gate: " in line or "held back" in line for line in native), native[:5]
    assert not any(line.startswith(("[OPENCV", "[h264", "[ WARN")) for line in lines), "a raw native line"
    windows = int((ran + 15) // WINDOW_S) + 2      # the start-up and the stop included
    assert len(native) <= windows * (TOTAL + 1), (len(native), windows, BURST)
