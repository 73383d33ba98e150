"""In-process metrics that every stage writes to: latencies, counters, gauges.

Cheap enough for the hot path: one lock, a deque append and one bucket increment.
Stage latencies keep a rolling window of the last ``window`` observations per
(stage, camera) for percentiles, plus cumulative count, sum and fixed histogram
buckets (for the Prometheus ``_seconds`` histograms, which must never go backwards).
"""
from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

STAGES = ("decode", "preprocess", "detect", "embed", "match", "persist", "publish")

# Per-camera counters the pipeline increments (names shared with the pipeline's code).
CAMERA_COUNTERS = ("frames_captured", "frames_processed", "frames_dropped", "reconnects", "faces", "events")
# Per-camera rate and motion figures of a camera's status (edge.pipeline.gate.detect_figures),
# carried into telemetry, /metrics and MQTT as they are.
DETECT_FIGURES = ("detect_fps", "motion_gating", "motion", "motion_fraction", "frames_decoded", "fps_decoded",
                  "frames_detected", "fps_detected", "detect_share", "global_changes", "admitted_keepalive")

# Upper bounds (seconds) of the latency histogram buckets; +Inf is implicit.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Key = tuple[str, str]  # (name, label) where label is a camera name or ''


class Metrics:
    def __init__(self, window: int = 1024) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._latency: dict[Key, deque[float]] = defaultdict(lambda: deque(maxlen=self._window))
        self._latency_count: dict[Key, int] = defaultdict(int)
        self._latency_sum: dict[Key, float] = defaultdict(float)
        self._buckets: dict[Key, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self._counters: dict[Key, float] = defaultdict(float)
        self._gauges: dict[Key, Any] = {}
        self.started_at = time.time()

    def observe(self, stage: str, seconds: float, camera: str | None = None) -> None:
        key = (stage, camera or "")
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            self._latency[key].append(seconds)
            self._latency_count[key] += 1
            self._latency_sum[key] += seconds
            self._buckets[key][index] += 1

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

    def stage_stats(self, by_camera: bool = False) -> dict[str, dict[str, Any]]:
        """Per stage: count, sum, p50, p95, p99, max in seconds.

        ``count``/``sum_s`` are totals since start; the percentiles and ``max_s`` cover the
        rolling window (the last ``window`` observations per stage and camera). With
        ``by_camera`` the keys are ``(stage, camera)`` pairs instead of pooled stages.
        """
        with self._lock:
            pooled: dict[Any, list[float]] = defaultdict(list)
            counts: dict[Any, int] = defaultdict(int)
            sums: dict[Any, float] = defaultdict(float)
            for key, values in self._latency.items():
                group: Any = key if by_camera else key[0]
                pooled[group].extend(values)
                counts[group] += self._latency_count[key]
                sums[group] += self._latency_sum[key]
        stats: dict[Any, dict[str, Any]] = {}
        for group, samples in pooled.items():
            arr = np.asarray(samples, dtype=np.float64)
            p50, p95, p99 = np.percentile(arr, [50, 95, 99]) if arr.size else (0.0, 0.0, 0.0)
            stats[group] = {
                "count": counts[group],
                "sum_s": sums[group],
                "window": int(arr.size),
                "p50_s": float(p50),
                "p95_s": float(p95),
                "p99_s": float(p99),
                "max_s": float(arr.max()) if arr.size else 0.0,
            }
        return stats

    def histograms(self) -> dict[Key, dict[str, Any]]:
        """Cumulative latency histograms per (stage, camera): ``buckets`` as [(le, count)]
        with a final ``inf`` bucket, plus ``count`` and ``sum_s``; monotonic since start."""
        with self._lock:
            raw = {key: (list(b), self._latency_count[key], self._latency_sum[key])
                   for key, b in self._buckets.items()}
        result: dict[Key, dict[str, Any]] = {}
        for key, (counts, total, total_sum) in raw.items():
            cumulative, running = [], 0
            for bound, n in zip(LATENCY_BUCKETS + (float("inf"),), counts):
                running += n
                cumulative.append((bound, running))
            result[key] = {"buckets": cumulative, "count": total, "sum_s": total_sum}
        return result

    def cameras(self) -> list[str]:
        """Camera labels seen in counters or latencies, sorted."""
        with self._lock:
            labels = {label for (_, label) in self._counters} | {label for (_, label) in self._latency}
        return sorted(label for label in labels if label)

    def counters(self) -> dict[Key, float]:
        with self._lock:
            return dict(self._counters)

    def gauges(self) -> dict[Key, Any]:
        with self._lock:
            return dict(self._gauges)
