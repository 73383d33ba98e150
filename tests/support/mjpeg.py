"""A tiny HTTP MJPEG camera on loopback (multipart/x-mixed-replace), stoppable and restartable.

Serves JPEG frames (by default the first frames of the shared clip) at ``fps`` on
``http://127.0.0.1:<port>/stream.mjpg``. ``stop()`` closes the listening socket and every open
stream, the way a camera that loses power disappears; ``start()`` brings it back on the same port.
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from tests.support.procs import free_port, wait_for_port

BOUNDARY = "facepro-frame"


def clip_jpegs(video: Path, count: int = 30, quality: int = 80) -> list[bytes]:
    cap = cv2.VideoCapture(str(video))
    frames: list[bytes] = []
    try:
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            frames.append(data.tobytes())
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"no frame decoded from {video}")
    return frames


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MjpegCamera:
    def __init__(self, frames: list[bytes], port: int | None = None, fps: float = 15.0) -> None:
        self.frames = frames
        self.port = port or free_port()
        self.fps = fps
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._alive = threading.Event()
        self.frozen = threading.Event()  # set: keep connections open but send nothing (a stalled camera)
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.frames_sent = 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                with camera._lock:
                    camera._sockets.add(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                index = 0
                try:
                    while camera._alive.is_set():
                        if camera.frozen.is_set():
                            time.sleep(0.05)
                            continue
                        data = camera.frames[index % len(camera.frames)]
                        index += 1
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        camera.frames_sent += 1
                        time.sleep(1.0 / camera.fps)
                except OSError:
                    pass
                finally:
                    with camera._lock:
                        camera._sockets.discard(self.connection)

        return Handler

    def start(self) -> MjpegCamera:
        self._alive.set()
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        wait_for_port(self.port, timeout=5)
        return self

    def stop(self) -> None:
        self._alive.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            for sock in list(self._sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None
