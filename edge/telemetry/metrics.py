"""In-process metrics that every stage writes to: latencies, counters, gauges.

Cheap enough for the hot path: one lock, a deque append. Stage latencies keep a rolling
window of the last ``window`` observations per (stage, camera) for percentiles.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

STAGES = ("decode", "preprocess", "detect", "embed", "match", "persist", "publish")

Key = tuple[str, str]  # (name, label) where label is a camera name or ''


class Metrics:
    def __init__(self, window: int = 1024) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._latency: dict[Key, deque[float]] = defaultdict(lambda: deque(maxlen=self._window))
        self._latency_count: dict[Key, int] = defaultdict(int)
        self._latency_sum: dict[Key, float] = defaultdict(float)
        self._counters: dict[Key, float] = defaultdict(float)
        self._gauges: dict[Key, Any] = {}
        self.started_at = time.time()

    def observe(self, stage: str, seconds: float, camera: str | None = None) -> None:
        key = (stage, camera or "")
        with self._lock:
            self._latency[key].append(seconds)
            self._latency_count[key] += 1
            self._latency_sum[key] += seconds

    @contextmanager
    def timed(self, stage: str, camera: str | None = None) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(stage, time.perf_counter() - start, camera)

    def incr(self, name: str, n: float = 1, camera: str | None = None) -> None:
        with self._lock:
            self._counters[(name, camera or "")] += n

    def set(self, name: str, value: Any, camera: str | None = None) -> None:
        with self._lock:
            self._gauges[(name, camera or "")] = value

    def counter(self, name: str, camera: str | None = None) -> float:
        with self._lock:
            return self._counters.get((name, camera or ""), 0.0)

    def gauge(self, name: str, camera: str | None = None, default: Any = None) -> Any:
        with self._lock:
            return self._gauges.get((name, camera or ""), default)

    def stage_stats(self) -> dict[str, dict[str, Any]]:
        """Per stage (all cameras pooled): count, sum, p50, p95, p99, max in seconds."""
        with self._lock:
            pooled: dict[str, list[float]] = defaultdict(list)
            counts: dict[str, int] = defaultdict(int)
            sums: dict[str, float] = defaultdict(float)
            for (stage, _label), values in self._latency.items():
                pooled[stage].extend(values)
                counts[stage] += self._latency_count[(stage, _label)]
                sums[stage] += self._latency_sum[(stage, _label)]
        stats: dict[str, dict[str, Any]] = {}
        for stage, values in pooled.items():
            arr = np.asarray(values, dtype=np.float64)
            p50, p95, p99 = np.percentile(arr, [50, 95, 99]) if arr.size else (0.0, 0.0, 0.0)
            stats[stage] = {
                "count": counts[stage],
                "sum_s": sums[stage],
                "p50_s": float(p50),
                "p95_s": float(p95),
                "p99_s": float(p99),
                "max_s": float(arr.max()) if arr.size else 0.0,
            }
        return stats

    def counters(self) -> dict[Key, float]:
        with self._lock:
            return dict(self._counters)

    def gauges(self) -> dict[Key, Any]:
        with self._lock:
            return dict(self._gauges)
