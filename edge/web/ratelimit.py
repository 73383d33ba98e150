"""A sliding-window counter per key (a client address), bounded in memory.

Used by the machine API for failed token checks (``blocked`` then ``record``) and for
``latest.jpg`` (``allow``, which records and answers in one step).
"""
from __future__ import annotations

import threading
import time
from collections import deque

MAX_KEYS = 10000


class SlidingWindow:
    """At most ``limit`` hits per ``window_s`` seconds per key."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_KEYS:  # forget keys whose window has passed
                cutoff = now - self.window_s
                for stale in [k for k, v in self._hits.items() if not v or v[-1] <= cutoff]:
                    del self._hits[stale]
                if len(self._hits) >= MAX_KEYS:  # still full: drop the oldest key
                    del self._hits[next(iter(self._hits))]
            hits = self._hits[key] = deque(maxlen=self.limit)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def blocked(self, key: str, now: float | None = None) -> bool:
        """True when ``key`` used up its hits in the current window (nothing is recorded)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return len(self._recent(key, now)) >= self.limit

    def record(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key, now).append(now)

    def allow(self, key: str, now: float | None = None) -> bool:
        """Record a hit unless ``key`` is over the limit; False when it is."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._recent(key, now)
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Whole seconds until ``key`` may hit again (at least 1)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._recent(key, now)
            if len(hits) < self.limit:
                return 1
            return max(1, int(hits[0] + self.window_s - now + 0.999))
