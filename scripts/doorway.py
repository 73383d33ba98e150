"""A "day at a door" for scripts/bench_cameras.py: the video and the cameras that show it.

The day, at 15 fps (times in seconds from the moment a camera is first read):

* 0 - ``PASSAGE_AT``: the empty scene (the clip's first frame blurred until no face is
  left in it) with sensor noise, and at ``LIGHTS_AT`` the lights dim (a gain of 0.6 on the
  whole picture, kept for the rest of the day);
* ``PASSAGE_AT`` - +9.2 s, busy cameras only: people pass (the shared clip, every second frame);
* then the empty scene again until ``DAY_S``.

Quiet cameras show the empty scene all day. Frames are JPEG-compressed for MJPEG cameras
(served by :class:`MjpegCameras` on loopback, one stream per camera, paced at 15 fps from
when the service connects) or H.264-compressed into an MP4 file by ffmpeg (a GOP of 2 s,
like an IP camera) for file sources played at their native rate.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from tests.support.scenes import clip_frames, still_background

FPS = 15.0
LIGHTS_AT = 19.0
PASSAGE_AT = 34.0
DAY_S = 50.0
NOISE = 3.0
BOUNDARY = "doorway"


def day_frames(size: tuple[int, int], busy: bool, day_s: float = DAY_S, seed: int = 0) -> list[np.ndarray]:
    """The day's frames (BGR) for one camera of ``size`` (w, h)."""
    rng = np.random.default_rng(seed)
    empty = still_background(size).astype(np.float32)
    noise = [rng.normal(0.0, NOISE, size=empty.shape).astype(np.float32) for _ in range(16)]
    passage = clip_frames(step=2, size=size) if busy else []
    first, last = round(PASSAGE_AT * FPS), round(PASSAGE_AT * FPS) + len(passage)
    frames = []
    for i in range(round(day_s * FPS)):
        if first <= i < last:
            scene = passage[i - first].astype(np.float32)
        else:
            scene = empty * (0.6 if i >= LIGHTS_AT * FPS else 1.0)
        frames.append(np.clip(scene + noise[i % len(noise)], 0, 255).astype(np.uint8))
    return frames


def jpegs(frames: list[np.ndarray], quality: int = 80) -> list[bytes]:
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for f in frames]


def write_h264(frames: list[np.ndarray], path: Path) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("bench_cameras: the H.264 runs need ffmpeg (apt-get install ffmpeg)")
    h, w = frames[0].shape[:2]
    proc = subprocess.Popen([ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
                             "-s", f"{w}x{h}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
                             "-crf", "23", "-g", str(int(2 * FPS)), "-pix_fmt", "yuv420p", str(path)],
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"bench_cameras: ffmpeg could not write {path}")
    return path


class MjpegCameras:
    """``/cam<i>.mjpg`` streams on one loopback port; each stream plays its day once from the
    moment it is opened, paced by the clock (frame k at open + k / FPS, no drift).
    ``opened_at[i]`` is the monotonic time camera i was first opened; ``sent[i]`` counts frames."""

    def __init__(self, days: list[list[bytes]]) -> None:
        self.days = days
        self.opened_at: dict[int, float] = {}
        self.sent = [0] * len(days)
        self.late = [0] * len(days)  # frames sent more than one frame interval behind the clock
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port}/cam{index}.mjpg"

    def start(self) -> MjpegCameras:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cameras = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    index = int(self.path.removeprefix("/cam").removesuffix(".mjpg"))
                    day = cameras.days[index]
                except (ValueError, IndexError):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                start = cameras.opened_at.setdefault(index, time.monotonic())
                first = max(0, int((time.monotonic() - start) * FPS))  # a reconnect resumes the day
                try:
                    for k in range(first, len(day)):
                        delay = start + k / FPS - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        elif delay < -1 / FPS:
                            cameras.late[index] += 1
                        data = day[k]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         f"{len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        cameras.sent[index] += 1
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
