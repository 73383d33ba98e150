"""FFmpeg's and OpenCV's own messages through the service's logger: named, timed, rate-limited.

OpenCV's FFmpeg log callback prints on file descriptor 1 ("[OPENCV:FFMPEG:16] error while
decoding MB ..."), OpenCV's C++ logger on fd 2; Python cannot hook ``av_log`` through OpenCV.
So ``facepro run`` points fds 1 and 2 at pipes (:func:`route_native_stderr`)
and a reader thread turns each line into a log record of the logger ``edge.ffmpeg``: with the
camera's name when the line can be tied to one (a single live camera, or the line names its
host), at most ``BURST`` lines of a kind and ``TOTAL`` in all per ``WINDOW_S``, then one "N more" line.
A damaged stream that wrote 4,150 raw lines in 150 s gives about 165. Python's own stderr and
the service's log handler move to copies of the original fds, and every line the reader does
not recognise is passed through unchanged, so nothing that used to reach the journal is lost
(``faulthandler`` also writes to the copy, so a crash report does not depend on the reader).
``OPENCV_FFMPEG_LOGLEVEL`` is set to 24 (warnings) unless the environment chose a level.
"""
from __future__ import annotations

import faulthandler
import io
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from edge import secrets

log = logging.getLogger("edge.ffmpeg")

WINDOW_S = 10.0
BURST = 3
TOTAL = 10
MAX_LINE = 400
# "[OPENCV:FFMPEG:16] error while decoding MB 17 21", "[h264 @ 0x55d0] ...", "[ WARN:0@8.7] global ..."
_NATIVE = re.compile(r"^\s*(\[OPENCV:FFMPEG:\d+\]|\[[^\]]*@ ?(0x)?[0-9a-f]+\]|\[ ?(WARN|ERROR|INFO):\d+@[\d.]+\])")
_DECODE_ERROR = re.compile(r"error while decoding|corrupt|concealing|Invalid NAL|missing picture", re.I)
_ADDRESS = re.compile(r"0x[0-9a-f]+|\d+(\.\d+)?")
_installed = False
_lock = threading.Lock()
_decode_errors: dict[str, int] = {}   # per camera, from FFmpeg's lines (the reader's count)


def decode_errors(camera: str) -> int:
    """Decoder errors FFmpeg reported for ``camera`` since the start (0 where not routed)."""
    with _lock:
        return _decode_errors.get(camera, 0)


class LineLimiter:
    """At most ``burst`` lines of one kind (the line without its numbers and addresses) and
    ``total`` lines in all per window; what is held back is counted and reported once."""

    def __init__(self, window_s: float = WINDOW_S, burst: int = BURST, total: int = TOTAL) -> None:
        self.window_s, self.burst, self.total = window_s, burst, total
        self._start: float | None = None
        self._kinds: dict[str, int] = {}
        self._admitted = 0
        self._held = 0

    def admit(self, line: str, now: float | None = None) -> tuple[bool, int]:
        """(log it?, how many lines the window that just ended held back)."""
        now = time.monotonic() if now is None else now
        held = 0
        if self._start is None or now - self._start >= self.window_s:
            held, self._held = self._held, 0
            self._start, self._kinds, self._admitted = now, {}, 0
        key = _ADDRESS.sub("#", line)[:120]
        seen = self._kinds.get(key, 0)
        if len(self._kinds) < 1000:  # bounded however many kinds a broken stream makes up
            self._kinds[key] = seen + 1
        if seen >= self.burst or self._admitted >= self.total:
            self._held += 1
            return False, held
        self._admitted += 1
        return True, held


class CameraNamer:
    def __init__(self, cameras: Iterable[dict]) -> None:
        self.hosts: dict[str, str] = {}
        live = [c for c in cameras if c.get("enabled", True) and "://" in str(c.get("source"))]
        for camera in live:
            parts = urlsplit(str(camera["source"]))
            if parts.hostname:
                self.hosts[f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname] = camera["name"]
        self.only = live[0]["name"] if len(live) == 1 else None

    def name(self, line: str) -> str | None:
        for host, name in self.hosts.items():
            if host in line:
                return str(name)
        return self.only


def format_line(raw: str, namer: CameraNamer) -> str:
    line = secrets.redact(raw.strip())[:MAX_LINE]
    camera = namer.name(line)
    return f"camera {camera}: {line}" if camera else line


def _reader(fd: int, passthrough: io.TextIOBase, namer: CameraNamer, limiter: LineLimiter) -> None:
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        for chunk in iter(lambda: pipe.readline(65536), b""):
            text = chunk.decode("utf-8", "replace")
            if not text.strip():
                continue
            if not _NATIVE.match(text):
                passthrough.write(text)
                passthrough.flush()
                continue
            camera = namer.name(text)
            if camera and _DECODE_ERROR.search(text):
                with _lock:
                    _decode_errors[camera] = _decode_errors.get(camera, 0) + 1
            admit, held = limiter.admit(text)
            if held:
                log.warning("%d more FFmpeg/OpenCV line(s) held back in %g s", held, WINDOW_S)
            if admit:
                log.warning("%s", format_line(text, namer))


def _redirect(fd: int, namer: CameraNamer, limiter: LineLimiter) -> io.TextIOWrapper:
    """Point ``fd`` at a pipe read by a reader thread; returns a stream on a copy of the old fd."""
    saved = os.dup(fd)
    read_fd, write_fd = os.pipe()
    original = os.fdopen(saved, "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(write_fd, fd)
    os.close(write_fd)
    threading.Thread(target=_reader, args=(read_fd, original, namer, limiter),
                     name=f"native-fd{fd}", daemon=True).start()
    return original


def route_native_stderr(cameras: Iterable[dict]) -> bool:
    """Send fds 1 and 2 through the readers (once per process). False where they cannot be
    redirected. OpenCV prints FFmpeg's messages on stdout ("[OPENCV:FFMPEG:16] ..."), its own on
    stderr; the service itself prints nothing on stdout."""
    global _installed
    if _installed:
        return True
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "24")
    namer, limiter = CameraNamer(cameras), LineLimiter()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        out = _redirect(1, namer, limiter)
        err = _redirect(2, namer, limiter)
    except OSError:
        return False
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.__stderr__):
            handler.setStream(err)
    sys.stdout, sys.stderr = out, err
    faulthandler.enable(file=err)
    _installed = True
    return True
