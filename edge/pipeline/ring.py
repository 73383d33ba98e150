"""Per-camera frame ring: N preallocated frame buffers that the decoder writes into in place.

The capture thread asks for a slot (:meth:`FrameRing.acquire_write`), decodes straight into
its array (``cap.read(slot.array)``) and commits it; the inference stage leases the newest
committed slot, reads it, and releases it. No frame-sized buffer is allocated per frame: the
slot arrays are created once (again only when the camera's frame shape changes).

Two policies:

* ``latest`` (live cameras): at most one committed frame waits; committing a newer frame
  frees the older one and counts a drop, so a slow consumer always gets the newest frame
  and the producer never waits (with 3+ slots).
* ``lossless`` (``facepro process``): committed frames queue in order and the producer waits
  for a free slot, so every frame is processed and none is dropped.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

FREE, WRITING, READY, LEASED = 0, 1, 2, 3

POLICIES = ("latest", "lossless")


class FrameSlot:
    """One buffer plus what is known about the frame in it. Reused, never reallocated per frame."""

    __slots__ = ("index", "array", "state", "seq", "captured_at", "media_time", "decode_s", "region")

    def __init__(self, index: int, array: np.ndarray) -> None:
        self.index = index
        self.array = array
        self.state = FREE
        self.seq = 0
        self.captured_at = 0.0   # wall clock (time.time()) when the frame was decoded
        self.media_time = 0.0    # stream position in seconds (files), else monotonic capture time
        self.decode_s = 0.0      # seconds the decode into this slot took
        self.region: tuple[int, int, int, int] | None = None  # x, y, w, h to detect in (motion), else all


class RingClosed(Exception):
    """The ring was closed while a producer waited for a free slot."""


class FrameRing:
    def __init__(self, size: int, shape: tuple[int, ...] = (1, 1, 3), policy: str = "latest",
                 on_commit: Callable[[], None] | None = None) -> None:
        if size < 2:
            raise ValueError(f"ring size must be at least 2, got {size}")
        if policy not in POLICIES:
            raise ValueError(f"ring policy must be one of {POLICIES}, got {policy!r}")
        self.size = size
        self.policy = policy
        self._on_commit = on_commit
        self._cond = threading.Condition()
        self._slots = [FrameSlot(i, np.zeros(shape, dtype=np.uint8)) for i in range(size)]
        self._ready: deque[FrameSlot] = deque(maxlen=size)
        self._seq = 0
        self._closed = False
        self.committed = 0
        self.dropped = 0
        self.allocations = size  # frame buffers allocated so far (for tests and the benchmark)

    # -- shape -----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._slots[0].array.shape

    def ensure_shape(self, shape: tuple[int, ...]) -> bool:
        """Reallocate the buffers that are not leased if the frame shape changed. True if it did."""
        with self._cond:
            changed = False
            for slot in self._slots:
                if slot.array.shape != tuple(shape) and slot.state != LEASED:
                    slot.array = np.zeros(shape, dtype=np.uint8)
                    slot.seq = 0  # holds no frame now (copy_latest skips it)
                    self.allocations += 1
                    changed = True
            return changed

    def slots(self) -> list[FrameSlot]:
        return list(self._slots)

    # -- producer --------------------------------------------------------------------------

    def acquire_write(self, timeout: float | None = None) -> FrameSlot | None:
        """A slot to decode into. ``latest`` never waits; ``lossless`` waits for a free slot.

        Returns None when ``timeout`` passed (lossless only); raises RingClosed once closed.
        """
        with self._cond:
            while True:
                if self._closed:
                    raise RingClosed()
                for slot in self._slots:
                    if slot.state == FREE:
                        slot.state = WRITING
                        return slot
                if self.policy == "latest" and self._ready:
                    # Only reachable with 2 slots (one leased, one ready): overwrite the waiting frame.
                    slot = self._ready.popleft()
                    self.dropped += 1
                    slot.state = WRITING
                    return slot
                if not self._cond.wait(timeout):
                    return None

    def commit(self, slot: FrameSlot, captured_at: float, media_time: float, decode_s: float = 0.0) -> None:
        with self._cond:
            self._seq += 1
            slot.seq = self._seq
            slot.captured_at = captured_at
            slot.media_time = media_time
            slot.decode_s = decode_s
            if self.policy == "latest":
                while self._ready:  # newest frame wins: the waiting older frame is dropped
                    old = self._ready.popleft()
                    old.state = FREE
                    self.dropped += 1
            slot.state = READY
            self._ready.append(slot)
            self.committed += 1
            self._cond.notify_all()
        if self._on_commit is not None:
            self._on_commit()

    def abandon(self, slot: FrameSlot) -> None:
        """Give back a slot whose decode failed."""
        with self._cond:
            slot.state = FREE
            self._cond.notify_all()

    def copy_latest(self) -> tuple[np.ndarray, float] | None:
        """A copy of the newest complete frame and its capture time (wall clock), or None.

        For a person aiming the camera, not for the hot path: the copy is made under the
        ring's lock, so no slot being copied can be handed to the decoder meanwhile."""
        with self._cond:
            done = [s for s in self._slots if s.state != WRITING and s.seq > 0]
            if not done:
                return None
            newest = max(done, key=lambda s: s.seq)
            return newest.array.copy(), newest.captured_at

    # -- consumer --------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self._ready)

    def lease(self, timeout: float | None = 0.0) -> FrameSlot | None:
        """The frame to process next (newest for ``latest``, oldest for ``lossless``), or None."""
        with self._cond:
            if not self._ready and timeout != 0.0:
                self._cond.wait_for(lambda: bool(self._ready) or self._closed, timeout)
            if not self._ready:
                return None
            slot = self._ready.popleft()
            slot.state = LEASED
            return slot

    def release(self, slot: FrameSlot) -> None:
        with self._cond:
            slot.state = FREE
            self._cond.notify_all()

    def pending(self) -> int:
        return len(self._ready)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no frame is queued or leased (for draining a lossless run)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._ready or any(s.state == LEASED for s in self._slots):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """No more frames will come; wakes the consumer (``on_commit``) so it need not time out."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._on_commit is not None:
            self._on_commit()

    @property
    def closed(self) -> bool:
        return self._closed


class RateMeter:
    """Events per second over the last ``window`` occurrences (no allocation beyond a float)."""

    def __init__(self, window: int = 64, max_age_s: float = 5.0) -> None:
        self._times: deque[float] = deque(maxlen=window)
        self.max_age_s = max_age_s

    def tick(self, now: float) -> None:
        self._times.append(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        times = list(self._times)
        recent = [t for t in times if now - t <= self.max_age_s]
        if len(recent) < 2:
            return 0.0
        span = now - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0
