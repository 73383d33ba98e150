"""Probe a camera in a child process: open it and decode one frame, bounded in time.

FFmpeg inside OpenCV can block past its own timeouts, and was seen to abort the whole process
(SIGABRT) on a camera that accepts the connection and never answers. So the probe runs in a
fresh interpreter (``python -m edge.pipeline.probe``) that gets the camera on stdin and prints
one JSON line; the parent kills it at the deadline, and a child that dies of a signal is a
failed probe, never a dead caller. The child's stderr is where FFmpeg's own messages land:
the last few lines are kept (masked, bounded) as ``ffmpeg`` in the result.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from edge import secrets

STARTUP_GRACE_S = 5.0     # interpreter start and the cv2 import, on a loaded machine
MAX_FFMPEG_LINES = 5
MAX_OUTPUT_BYTES = 65536


def _blank(error: str | None = None, code: str | None = None, fix: str | None = None) -> dict[str, Any]:
    return {"ok": False, "fps": None, "width": None, "height": None, "error": error, "code": code,
            "fix": fix, "ffmpeg": []}


def deadline_s(timeout_s: float) -> float:
    """The most a probe may take: the open, the diagnosis of a failed open (capture.py bounds
    it at 5 s) and the child's start-up."""
    return timeout_s + min(timeout_s, 5.0) + STARTUP_GRACE_S


def probe_source(camera: dict[str, Any], timeout_s: float = 10) -> dict[str, Any]:
    """Open ``camera`` and decode one frame within ``timeout_s`` (plus the child's start-up):
    {ok, fps, width, height, error, code, fix, ffmpeg}. Never raises for a failed check."""
    from edge.pipeline.capture import describe  # the parent only needs the name

    what = describe(camera)
    request = json.dumps({"camera": camera, "timeout_s": timeout_s})
    env = dict(os.environ)
    env.setdefault("OPENCV_FFMPEG_LOGLEVEL", "16")  # AV_LOG_ERROR: the reasons, not the chatter
    try:
        proc = subprocess.run([sys.executable, "-m", "edge.pipeline.probe"], input=request.encode(),
                              capture_output=True, timeout=deadline_s(timeout_s), env=env, check=False)
    except subprocess.TimeoutExpired:
        return _blank(f"{what}: no frame within {timeout_s:g} s (the probe was stopped)", "no_answer",
                      "the camera accepts connections but sends no video: restart it, or check the URL's port and path")
    ffmpeg = _ffmpeg_lines(proc.stderr)
    lines = proc.stdout[-MAX_OUTPUT_BYTES:].decode("utf-8", "replace").strip().splitlines()
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = str(-proc.returncode)
        result = _blank(f"{what}: the camera probe crashed ({sig}) while opening the stream", "crashed",
                        "check the URL with `ffprobe URL`; the last FFmpeg messages are shown")
    elif not lines:
        result = _blank(f"{what}: the camera probe ended without an answer (exit {proc.returncode})", "unknown")
    else:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = _blank(f"{what}: the camera probe gave no readable answer", "unknown")
    result["ffmpeg"] = ffmpeg
    return result


def _ffmpeg_lines(stderr: bytes) -> list[str]:
    text = stderr[-MAX_OUTPUT_BYTES:].decode("utf-8", "replace")
    lines = [secrets.redact(line.strip())[:300] for line in text.splitlines() if line.strip()]
    return lines[-MAX_FFMPEG_LINES:]


def _child() -> int:
    import cv2

    from edge.pipeline.capture import SourceError, describe, open_capture

    request = json.loads(sys.stdin.read(MAX_OUTPUT_BYTES))
    camera, timeout_s = request["camera"], float(request["timeout_s"])
    try:
        cap = open_capture(camera, timeout_s=timeout_s)
    except SourceError as exc:
        cause = exc.cause
        print(json.dumps(_blank(str(exc), cause.code if cause else None, cause.fix if cause else None)))
        return 0
    except Exception as exc:  # cv2.error for some malformed inputs
        print(json.dumps(_blank(f"{describe(camera)}: {exc}", "unknown")))
        return 0
    try:
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            print(json.dumps(_blank(f"{describe(camera)}: opened but no frame could be decoded", "not_stream",
                                    "check the stream's codec (H.264/H.265/MJPEG) and path")))
            return 0
        fps = cap.get(cv2.CAP_PROP_FPS)
        decoder = getattr(cap, "decode_path", "FFmpeg/OpenCV")  # a GStreamer source names its own
        print(json.dumps({"ok": True, "fps": round(float(fps), 3) if fps and 0 < fps < 1000 else None,
                          "width": int(frame.shape[1]), "height": int(frame.shape[0]), "error": None,
                          "code": None, "fix": None, "ffmpeg": [], "decoder": decoder}))
    finally:
        cap.release()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
