"""The inference worker: leases frames from the cameras' rings, detects, embeds, matches, records.

Cameras share the worker fairly: it serves them round robin, each turn taking the newest
frame of the next camera that has one, so a fast camera cannot starve a slow one (each
camera gets at most one frame per round while others are waiting).

Every stage's latency goes to ``metrics.observe(stage, seconds, camera)`` (decode is observed
by the source), and per camera the counters ``frames_processed``, ``faces`` and ``events``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.events import EventSink
from edge.pipeline import region
from edge.pipeline.ring import FrameRing, FrameSlot, RateMeter
from edge.pipeline.tracks import EmbeddingReuse

log = logging.getLogger(__name__)

_NO_PERSONS: list[str | None] = []
_NO_SCORES = np.zeros(0, dtype=np.float32)


class Feed:
    """One camera as the worker sees it."""

    __slots__ = ("name", "ring", "det_max_side", "detector_input", "reuse", "frames_processed", "faces",
                 "processed_rate", "captured_rate", "last_seq", "paused", "frames_skipped", "gate")

    def __init__(self, name: str, ring: FrameRing, det_max_side: int | None = None) -> None:
        self.name = name
        self.ring = ring
        self.det_max_side = det_max_side  # None: the detector's (pipeline.det_max_side)
        self.detector_input: str | None = None  # "WxH" the detector last ran at for this camera
        self.reuse: EmbeddingReuse | None = None  # this camera's faces of its previous frame
        self.frames_processed = 0
        self.faces = 0
        self.processed_rate = RateMeter()
        self.captured_rate = RateMeter()
        self.last_seq = 0
        self.paused = False  # recognition paused on this camera: frames are taken, not processed
        self.frames_skipped = 0
        self.gate: Any = None  # edge.pipeline.gate.DetectGate of a gated camera: told what was found


class InferenceLoop:
    """One worker thread's logic. ``gallery`` may be None (nothing enrolled): every face is unknown."""

    def __init__(self, pack: Any, sink: EventSink | None, *, gallery: Any = None, metrics: Any = None,
                 det_threshold: float | None = None, reuse_frames: int = 0, match_threshold: float = 0.4,
                 maintenance: Callable[[], None] | None = None, maintenance_interval_s: float = 3.0) -> None:
        self.pack = pack
        self.detector = pack.detector
        self.embedder = pack.embedder
        self.sink = sink
        self.gallery = gallery
        self.metrics = metrics
        self.det_threshold = det_threshold
        # A face in the same place as in the camera's previous frame keeps its embedding for
        # up to this many frames (recognition.reuse_embedding_frames; 0 = embed every face).
        self.reuse_frames = int(reuse_frames)
        self.match_threshold = float(match_threshold)
        self._embeddings = np.zeros((self.embedder.max_faces, self.embedder.dim), dtype=np.float32)
        self.faces_embedded = 0
        self.feeds: list[Feed] = []
        self._next = 0
        self._wake = threading.Event()
        self._timings: dict[str, float] = {"preprocess": 0.0, "detect": 0.0, "embed": 0.0}
        self._maintenance = maintenance
        self._maintenance_interval_s = maintenance_interval_s
        self._maintenance_at = time.monotonic()
        self.maintenance_requested = threading.Event()
        self.frames_processed = 0
        self.faces = 0
        self.busy_s = 0.0
        self.heartbeat = time.monotonic()
        self.error: str | None = None
        self.frame_hook: Callable[[Feed, FrameSlot], None] | None = None  # benchmarks/tests look per frame
        self.last_detections: Any = None
        self.last_persons: list[str | None] = _NO_PERSONS
        self.last_similarities: Any = _NO_SCORES

    def add_camera(self, name: str, ring: FrameRing, det_max_side: int | None = None) -> Feed:
        feed = Feed(name, ring, det_max_side)
        self.feeds.append(feed)
        return feed

    def notify(self) -> None:
        """A ring committed a frame (called from the capture threads)."""
        self._wake.set()

    def feed(self, name: str) -> Feed | None:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        return None

    # -- scheduling ------------------------------------------------------------------------

    def step(self, timeout: float = 0.5) -> bool:
        """Process one frame of the next camera (round robin) that has one. False if none came."""
        self.heartbeat = time.monotonic()
        self._maybe_maintain()
        self._wake.clear()
        count = len(self.feeds)
        for offset in range(count):
            index = (self._next + offset) % count
            feed = self.feeds[index]
            slot = feed.ring.lease(0.0)
            if slot is None:
                continue
            self._next = index + 1
            if feed.paused:
                feed.frames_skipped += 1
                feed.last_seq = slot.seq
                feed.ring.release(slot)
                return True
            try:
                self.process(feed, slot)
                if self.frame_hook is not None:
                    self.frame_hook(feed, slot)
            finally:
                feed.ring.release(slot)
            return True
        self._wake.wait(timeout)
        return False

    def run(self, stop: threading.Event) -> None:
        """Serve the cameras until ``stop`` is set (the thread target of ``facepro run``)."""
        while not stop.is_set():
            try:
                self.step(0.5)
            except Exception as exc:  # a bad frame or a model failure must not kill the worker
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("inference worker: frame failed")
                stop.wait(1.0)

    def run_until_drained(self, sources_done: Callable[[], bool]) -> None:
        """Process every frame until the sources are done and the rings are empty (``facepro process``)."""
        while True:
            if self.step(0.0 if sources_done() else 0.2):
                continue
            if sources_done() and not any(feed.ring.pending() for feed in self.feeds):
                return

    def request_maintenance(self) -> None:
        """Run the maintenance callback before the next frame (thread-safe)."""
        self.maintenance_requested.set()
        self._wake.set()

    def _maybe_maintain(self) -> None:
        if self._maintenance is None:
            return
        now = time.monotonic()
        if self.maintenance_requested.is_set() or now - self._maintenance_at >= self._maintenance_interval_s:
            self.maintenance_requested.clear()
            self._maintenance_at = now
            try:
                self._maintenance()
            except Exception:
                log.exception("inference worker: maintenance failed")

    # -- one frame -------------------------------------------------------------------------

    def process(self, feed: Feed, slot: FrameSlot) -> int:
        """Detect, embed, match and record the events of one frame. Returns the face count."""
        t_start = time.perf_counter()
        frame = slot.array
        name = feed.name
        metrics = self.metrics
        timings = self._timings
        detections = region.detect(self.detector, frame, slot.region, self.det_threshold, timings, feed.det_max_side)
        n = len(detections)
        if feed.gate is not None:
            feed.gate.faces_seen(n)
        if metrics is not None:
            metrics.observe("preprocess", timings["preprocess"], name)
            metrics.observe("detect", timings["detect"], name)
        persons: list[str | None] = _NO_PERSONS
        similarities: Any = _NO_SCORES
        if n:
            embeddings = self._embed(feed, frame, detections, timings, slot.captured_at)
            t_match = time.perf_counter()
            persons, similarities = self._match(embeddings)
            t_matched = time.perf_counter()
            if feed.reuse is not None:
                feed.reuse.remember(detections.boxes, embeddings, similarities)
            if metrics is not None:
                metrics.observe("embed", timings["embed"], name)
                metrics.observe("match", t_matched - t_match, name)
            if self.sink is not None:
                self.sink.handle(name, frame, persons, similarities, detections.scores,
                                 clock=slot.media_time, captured_at=slot.captured_at)
        elif feed.reuse is not None:
            feed.reuse.forget(slot.captured_at)
        # The last frame's results, for a frame_hook (views valid until the next frame).
        self.last_detections, self.last_persons, self.last_similarities = detections, persons, similarities
        now = time.monotonic()
        feed.detector_input = self.detector.input_label
        feed.frames_processed += 1
        feed.faces += n
        feed.processed_rate.tick(now)
        feed.last_seq = slot.seq
        self.frames_processed += 1
        self.faces += n
        if metrics is not None:
            metrics.incr("frames_processed", 1, name)
            if n:
                metrics.incr("faces", n, name)
        self.busy_s += time.perf_counter() - t_start
        return n

    def _embed(self, feed: Feed, frame: np.ndarray, detections: Any, timings: dict[str, float],
               captured_at: float) -> np.ndarray:
        """Embeddings of all ``detections`` (rows in their order); faces that stayed put since
        the camera's previous frame keep theirs (see :mod:`edge.pipeline.tracks`).
        ``timings["embed"]`` covers both; ``faces_embedded`` counts what was computed."""
        t0 = time.perf_counter()
        n = len(detections)
        if self.reuse_frames <= 0:
            self.faces_embedded += n
            return self.embedder.embed(frame, detections.kps, timings)
        reuse = feed.reuse
        if reuse is None:
            reuse = feed.reuse = EmbeddingReuse(self.embedder.max_faces, self.embedder.dim, self.reuse_frames,
                                                self.match_threshold)
        out = self._embeddings[:n]
        need = reuse.plan(detections.boxes, out, captured_at)
        if len(need) == n:
            out[:] = self.embedder.embed(frame, detections.kps)
        elif need:
            out[need] = self.embedder.embed(frame, detections.kps[need])
        self.faces_embedded += len(need)
        timings["embed"] = time.perf_counter() - t0
        return out

    def _match(self, embeddings: np.ndarray) -> tuple[list[str | None], Any]:
        gallery = self.gallery
        n = embeddings.shape[0]
        if gallery is None or not len(gallery):
            return [None] * n, np.full(n, -1.0, dtype=np.float32)
        indices, scores = gallery.match(embeddings)
        person = gallery.person
        return [person(int(i)) for i in indices], scores
