"""Chart history: fine samples for ten minutes, coarse ones for an hour, minute aggregates.

Series are keyed ``(metric, label)`` (label: a camera or stage name, '' for none) and shown
under one name (:func:`series_name`): ``fps.<camera>``, ``fps_capture.<camera>``,
``stage.<stage>.p95_s``, ``cpu_percent``, ``memory_percent``, ``gpu_percent``...
Completed minutes come back from :meth:`History.add` for the caller to persist; minutes
loaded from the database at start (:meth:`History.preload`) fill the chart where the
in-memory samples do not reach, so a restart leaves the last hour visible.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable

from edge.db.metrics_store import MinuteRow

SeriesKey = tuple[str, str]


def series_name(metric: str, label: str) -> str:
    if not label:
        return metric
    head, dot, tail = metric.partition(".")
    if head == "stage" and dot:  # ('stage.p95_s', 'detect') -> 'stage.detect.p95_s'
        return f"stage.{label}.{tail}"
    return f"{metric}.{label}"


class _Acc:
    __slots__ = ("start", "total", "count", "low", "high")

    def __init__(self, start: float) -> None:
        self.start = start
        self.total = 0.0
        self.count = 0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        self.low = min(self.low, value)
        self.high = max(self.high, value)


class History:
    def __init__(self, fine_step_s: float = 1.0, fine_span_s: float = 600.0,
                 coarse_step_s: float = 10.0, coarse_span_s: float = 3600.0) -> None:
        self.fine_span_s = fine_span_s
        self.coarse_step_s = coarse_step_s
        self.coarse_span_s = coarse_span_s
        self._fine_len = max(1, math.ceil(fine_span_s / fine_step_s))
        self._coarse_len = max(1, math.ceil(coarse_span_s / coarse_step_s))
        self._lock = threading.Lock()
        self._fine: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self._coarse: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self._coarse_acc: dict[SeriesKey, _Acc] = {}
        self._minute_acc: dict[SeriesKey, _Acc] = {}
        self._minutes: dict[SeriesKey, deque[tuple[float, float]]] = {}  # loaded / completed minutes

    def add(self, t: float, values: dict[SeriesKey, float]) -> list[MinuteRow]:
        """Record one sample; returns the minute aggregates completed by it."""
        completed: list[MinuteRow] = []
        coarse_start = t - t % self.coarse_step_s
        minute_start = t - t % 60
        with self._lock:
            for key, value in values.items():
                if value is None or not math.isfinite(value):
                    continue
                self._fine.setdefault(key, deque(maxlen=self._fine_len)).append((t, value))
                acc = self._coarse_acc.get(key)
                if acc is not None and acc.start != coarse_start:
                    self._push_coarse(key, acc)
                    acc = None
                if acc is None:
                    acc = self._coarse_acc[key] = _Acc(coarse_start)
                acc.add(value)
                acc = self._minute_acc.get(key)
                if acc is not None and acc.start != minute_start:
                    completed.append(self._close_minute(key, acc))
                    acc = None
                if acc is None:
                    acc = self._minute_acc[key] = _Acc(minute_start)
                acc.add(value)
            # a series that stopped reporting still closes its minute
            for key in [k for k, a in self._minute_acc.items() if a.start < minute_start and k not in values]:
                completed.append(self._close_minute(key, self._minute_acc.pop(key)))
        return completed

    def _push_coarse(self, key: SeriesKey, acc: _Acc) -> None:
        point = (acc.start + self.coarse_step_s / 2, acc.total / acc.count)
        self._coarse.setdefault(key, deque(maxlen=self._coarse_len)).append(point)

    def _close_minute(self, key: SeriesKey, acc: _Acc) -> MinuteRow:
        self._minutes.setdefault(key, deque(maxlen=24 * 60)).append((acc.start + 30, acc.total / acc.count))
        return MinuteRow(int(acc.start), key[0], key[1], acc.total / acc.count, acc.low, acc.high, acc.count)

    def pending_minutes(self) -> list[MinuteRow]:
        """The minutes still open (to persist at shutdown); they are closed by this call."""
        with self._lock:
            rows = [self._close_minute(key, acc) for key, acc in self._minute_acc.items() if acc.count]
            self._minute_acc.clear()
        return rows

    def preload(self, rows: Iterable[MinuteRow]) -> None:
        with self._lock:
            for row in rows:
                self._minutes.setdefault((row.metric, row.label), deque(maxlen=24 * 60)).append(
                    (row.minute + 30, row.avg))

    def series(self, window_s: float, now: float, older: Iterable[MinuteRow] = ()) -> dict[str, list[list[float]]]:
        """Points in ``[now - window_s, now]`` per series name, oldest first, each level used
        only before the start of the next finer one. ``older`` adds minute rows (from the
        database) for the part before what memory holds."""
        start = now - window_s
        result: dict[str, list[list[float]]] = {}
        extra: dict[SeriesKey, list[tuple[float, float]]] = {}
        for row in older:
            extra.setdefault((row.metric, row.label), []).append((row.minute + 30, row.avg))
        with self._lock:
            keys = set(self._fine) | set(self._coarse) | set(self._minutes) | set(extra)
            for key in keys:
                fine = list(self._fine.get(key, ()))
                coarse = list(self._coarse.get(key, ()))
                acc = self._coarse_acc.get(key)
                minutes = list(self._minutes.get(key, ()))
                points: list[list[float]] = []
                limit = fine[0][0] if fine else math.inf
                coarse_limit = min(limit, coarse[0][0] - self.coarse_step_s / 2) if coarse else limit
                minute_limit = min(coarse_limit, minutes[0][0] - 30) if minutes else coarse_limit
                points += [[t, v] for t, v in extra.get(key, ()) if start <= t < minute_limit]
                points += [[t, v] for t, v in minutes if start <= t < coarse_limit and t + 30 <= coarse_limit]
                half = self.coarse_step_s / 2  # a bucket is shown only if it ends before the fine points
                points += [[t, v] for t, v in coarse if start <= t and t + half <= limit]
                if acc is not None and acc.count and not fine:
                    points.append([acc.start + self.coarse_step_s / 2, acc.total / acc.count])
                points += [[t, v] for t, v in fine if t >= start]
                if points:
                    points.sort(key=lambda p: p[0])
                    result[series_name(*key)] = [[round(t, 3), v] for t, v in points]
        return result

    def earliest(self) -> float | None:
        """Time of the oldest point held in memory."""
        with self._lock:
            times = [d[0][0] for group in (self._fine, self._coarse, self._minutes) for d in group.values() if d]
        return min(times) if times else None
