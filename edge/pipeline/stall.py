"""Is the stream still moving? Frame progress from the stream's own clock and content, and the
reconnect backoff.

OpenCV's FFmpeg reader returns ``grab() == True`` when its internal read timeout fires, with no
new picture behind it (the last one again, or an empty one). Counting those as frames kept a
frozen camera "online" for 30 s and then made it flap. :class:`FrameProgress` accepts a frame
only when the stream advanced: its presentation time (``CAP_PROP_POS_MSEC``) grew, or, for a
stream without usable timestamps, the picture differs from the last one. The stall clock
(:attr:`FrameProgress.last_progress`) moves only on accepted frames.
"""
from __future__ import annotations

import random
import time
import zlib
from typing import Any

import numpy as np

# A sample of the picture, enough to tell two decoded frames apart without hashing megabytes.
_SAMPLE_ROWS = 48


def fingerprint(frame: np.ndarray) -> int:
    rows = frame[:: max(1, frame.shape[0] // _SAMPLE_ROWS)]
    return zlib.crc32(np.ascontiguousarray(rows).data)


class FrameProgress:
    """Decides per grabbed frame: new (process it), repeat, or empty (skip it)."""

    def __init__(self, now_mono: float | None = None) -> None:
        self.last_pts: float | None = None
        self.pts_moves = False          # the stream's timestamps have advanced at least once
        self.last_print: int | None = None
        self.last_progress = time.monotonic() if now_mono is None else now_mono
        self.repeats = 0
        self.empties = 0

    def accept(self, frame: Any, pts_ms: float | None, now_mono: float | None = None) -> bool:
        """True when ``frame`` is a new picture of the stream; updates the stall clock."""
        if frame is None or getattr(frame, "size", 0) == 0:
            self.empties += 1
            return False
        pts = pts_ms if pts_ms is not None and pts_ms == pts_ms and pts_ms > 0 else None
        if pts is not None and self.last_pts is not None:
            if pts > self.last_pts:
                self.pts_moves = True
                new = True
            elif pts < self.last_pts - 1000.0:
                new = True                  # the stream's clock restarted (a camera reboot mid-session)
            else:
                new = False
        else:
            new = None  # no usable clock: fall back to the picture
        if new is None or (new is False and not self.pts_moves):
            mark = fingerprint(frame)
            new = mark != self.last_print
            self.last_print = mark
        elif new:
            self.last_print = None
        if pts is not None:
            self.last_pts = pts if new or self.last_pts is None else max(self.last_pts, pts)
        if not new:
            self.repeats += 1
            return False
        self.last_progress = time.monotonic() if now_mono is None else now_mono
        return True

    def pts_advanced(self, pts_ms: float | None, now_mono: float | None = None) -> bool:
        """True when the stream's clock moved past the last frame's: progress, judged without
        the picture (a frame the detect gate skips is never converted). False means "cannot
        tell from the clock": the caller converts the frame and asks :meth:`accept`."""
        if pts_ms is None or pts_ms != pts_ms or pts_ms <= 0 or self.last_pts is None or not self.pts_moves:
            return False
        if pts_ms <= self.last_pts:
            return False
        self.last_pts = pts_ms
        self.last_print = None
        self.last_progress = time.monotonic() if now_mono is None else now_mono
        return True

    def stalled_for(self, now_mono: float | None = None) -> float:
        return (time.monotonic() if now_mono is None else now_mono) - self.last_progress


class Backoff:
    """Reconnect delays: a short first retry, then doubling with full jitter up to ``cap_s``."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 5.0, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.cap_s = max(cap_s, first_s)
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        if self.attempt == 0:
            delay = self.first_s
        else:
            ceiling = min(self.cap_s, self.first_s * 2 ** self.attempt)
            delay = self.rng.uniform(self.first_s, ceiling)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
