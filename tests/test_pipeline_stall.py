"""Frame progress (is the stream moving?) and the reconnect backoff, on their own."""
from __future__ import annotations

import random

import numpy as np
import pytest

from edge.pipeline.stall import Backoff, FrameProgress


def frame(value: int) -> np.ndarray:
    return np.full((36, 64, 3), value, np.uint8)


def test_progress_by_the_streams_clock() -> None:
    progress = FrameProgress(now_mono=0.0)
    assert progress.accept(frame(1), 80040.0, now_mono=0.1)
    assert progress.accept(frame(1), 80080.0, now_mono=0.2)   # same picture, later time: a new frame
    assert not progress.accept(frame(2), 80080.0, now_mono=5.0)  # the clock stands: FFmpeg's read timeout
    assert not progress.accept(frame(2), 80060.0, now_mono=6.0)  # a little back: still no progress
    assert progress.stalled_for(now_mono=6.0) == pytest.approx(5.8)
    assert progress.accept(frame(3), 40.0, now_mono=7.0)      # restarted far back: a camera reboot
    assert progress.repeats == 2


def test_progress_by_the_picture_without_timestamps() -> None:
    progress = FrameProgress(now_mono=0.0)
    assert progress.accept(frame(1), 0.0, now_mono=1.0)
    assert not progress.accept(frame(1), None, now_mono=2.0)
    assert not progress.accept(frame(1), float("nan"), now_mono=3.0)
    assert progress.accept(frame(9), None, now_mono=4.0)
    assert not progress.accept(None, 100.0) and not progress.accept(np.zeros((0,), np.uint8), 100.0)
    assert progress.empties == 2 and progress.stalled_for(now_mono=10.0) == pytest.approx(6.0)


def test_a_skipped_frame_counts_as_progress_only_by_a_moving_clock() -> None:
    progress = FrameProgress(now_mono=0.0)
    assert not progress.pts_advanced(40.0)                   # no clock seen yet: convert and look
    progress.accept(frame(1), 40.0, now_mono=1.0)
    assert not progress.pts_advanced(80.0)                   # the clock has not been seen moving yet
    progress.accept(frame(2), 80.0, now_mono=2.0)
    assert progress.pts_advanced(120.0, now_mono=3.0) and progress.stalled_for(now_mono=3.0) == 0.0
    assert not progress.pts_advanced(120.0, now_mono=9.0)    # a repeat is not progress
    assert not progress.pts_advanced(float("nan"))


def test_backoff_retries_soon_then_jitters_under_its_cap() -> None:
    backoff = Backoff(0.5, 2.5, rng=random.Random(7))
    delays = [backoff.next() for _ in range(50)]
    assert delays[0] == 0.5
    assert all(0.5 <= d <= 2.5 for d in delays) and max(delays) > 2.0
    assert len({round(d, 3) for d in delays[3:]}) > 20       # jittered: cameras do not retry in lockstep
    backoff.reset()
    assert backoff.next() == 0.5
    assert Backoff(3.0, 1.0).next() == 3.0                   # a cap below the first retry is lifted to it
