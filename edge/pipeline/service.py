"""The pipeline part of the service: model pack, cameras, inference worker, events, retention.

:class:`Pipeline` is the component ``facepro run`` starts first. It registers itself as
``ctx.pipeline`` (the service puts it there) and answers ``cameras_status()``, ``models_info()``,
``healthy()`` and ``reload_gallery()`` for the other parts. The gallery is swapped only on the
inference thread: ``reload_gallery()`` and the bus ``enroll`` message only ask for it, and a
cheap poll of the database picks up enrolments made by another process. :func:`process_file` runs the same stages once over
a video file, every frame processed, for ``facepro process`` and the benchmark.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import Settings
from edge.context import ServiceContext
from edge.db.connection import connect
from edge.db.events import EventStore
from edge.events import EventSink
from edge.pipeline.gate import build_gate, detect_figures
from edge.pipeline.loop import Feed, InferenceLoop
from edge.pipeline.pause import PauseSwitches
from edge.pipeline.ring import FrameRing, FrameSlot
from edge.pipeline.sources import CameraSource, SourceError, iso_utc, open_capture
from edge.telemetry.storage import DiskFullState

log = logging.getLogger(__name__)

GALLERY_POLL_S = 3.0
RETENTION_INTERVAL_S = 600.0
# SQLite's own checkpoints run only at 1000 pages and never shrink the WAL file; an appliance
# that writes a few events an hour should not carry megabytes of WAL on its flash.
WAL_CHECKPOINT_INTERVAL_S = 300.0
HOUSEKEEPING_TICK_S = 0.5
STUCK_AFTER_S = 60.0


def load_pack(settings: Any) -> Any:
    """The model pack named by the settings; raises ``ModelPackError`` naming the dir/file."""
    from edge.pipeline.pack import load_model_pack_from_settings

    return load_model_pack_from_settings(settings)


def load_gallery(conn: Any, pack: Any, max_queries: int = 16) -> Any:
    """The enrolled embeddings made by ``pack``'s embedder (others are refused with a warning)."""
    from edge.pipeline.gallery import Gallery

    embedder = pack.embedder
    return Gallery.load(conn, int(embedder.dim), str(embedder.backend), max_queries=max_queries)


def build_loop(settings: Settings, pack: Any, sink: EventSink | None, gallery: Any, metrics: Any,
               maintenance: Callable[[], None] | None = None) -> InferenceLoop:
    """The inference worker over ``pack`` as the settings configure it (``facepro run`` and
    ``facepro process`` alike); ``maintenance`` runs on its thread between frames."""
    return InferenceLoop(pack, sink, gallery=gallery, metrics=metrics,
                         det_threshold=settings["recognition.det_threshold"],
                         reuse_frames=settings["recognition.reuse_embedding_frames"],
                         match_threshold=settings["recognition.match_threshold"],
                         maintenance=maintenance, maintenance_interval_s=GALLERY_POLL_S)


class Pipeline:
    name = "pipeline"
    produces_events = True  # the service stops it before the parts that consume its events

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.pack: Any = None
        self._problems: dict[str, str] = {}
        self.sources: list[CameraSource] = []
        self.loop: InferenceLoop | None = None
        self.store: EventStore | None = None
        self.sink: EventSink | None = None
        self._gallery_conn: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._reload_requested = threading.Event()
        self.switches = PauseSwitches(ctx.data_dir)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        settings = self.settings
        ctx = self.ctx
        self.store = EventStore(settings.db_path, busy_timeout_ms=settings["database.busy_timeout_ms"])
        storage = ctx.storage if isinstance(ctx.storage, DiskFullState) else None
        self.sink = EventSink.from_settings(settings, self.store, bus=ctx.bus, metrics=ctx.metrics, storage=storage)
        if ctx.storage is None:
            ctx.storage = self.sink.storage
        try:
            self.pack = load_pack(settings)
        except Exception as exc:  # ModelPackError names the directory and file
            self._problems["models"] = str(exc)
            log.error("model pack not loaded, cameras run without recognition: %s", exc)
        gallery = None
        if self.pack is not None:
            self._gallery_conn = connect(settings.db_path, busy_timeout_ms=settings["database.busy_timeout_ms"],
                                         check_same_thread=False)
            gallery = self._load_gallery(self._gallery_conn)
            self.loop = build_loop(settings, self.pack, self.sink, gallery, ctx.metrics,
                                   maintenance=self._maintain_gallery)
        ring_default = settings["pipeline.ring_size"]
        for camera in settings["cameras"]:
            if not camera.get("enabled", True):
                log.info("camera %s is disabled", camera["name"])
                continue
            size = camera.get("ring_size") or ring_default
            ring = FrameRing(max(int(size), 2), policy="latest",
                             on_commit=self.loop.notify if self.loop is not None else None)
            gate = build_gate(camera, settings["pipeline"], ctx.bus) if self.loop is not None else None
            source = CameraSource(camera, ring, bus=ctx.bus, metrics=ctx.metrics, gate=gate)
            if self.loop is not None:
                feed = self.loop.add_camera(source.name, ring, camera.get("det_max_side"))
                feed.paused = self.switches.paused(source.name)
                feed.gate = gate
            self.sources.append(source)
        if not self.sources:
            log.warning("no camera configured (settings key cameras): nothing to process")
        self._unsubscribe = ctx.bus.subscribe("enroll", lambda _payload: self.reload_gallery())
        for source in self.sources:
            source.start()
        if self.loop is not None:
            self._spawn("inference", self.loop.run, self._stop)
        self._spawn("pipeline-housekeeping", self._housekeeping)
        log.info("pipeline started: %d camera(s), %s", len(self.sources),
                 "recognition on" if self.loop is not None else "recognition OFF (no model pack)")

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        for source in self.sources:
            source.stop()
        if self.loop is not None:
            self.loop.notify()
        for thread in self._threads:
            thread.join(10)
        if self._gallery_conn is not None:
            self._gallery_conn.close()
        if self.store is not None:
            self.store.close()
        log.info("pipeline stopped")

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _housekeeping(self) -> None:
        next_retention = time.monotonic()
        next_checkpoint = time.monotonic() + WAL_CHECKPOINT_INTERVAL_S
        while not self._stop.wait(HOUSEKEEPING_TICK_S):
            now = time.monotonic()
            for source in self.sources:
                source.check_stall(now)
            if self.sink is not None:
                try:
                    self.sink.retry_pending()
                except Exception:
                    log.exception("writing the events held while the disk was full failed")
            if now >= next_retention and self.sink is not None:
                next_retention = now + RETENTION_INTERVAL_S
                try:
                    result = self.sink.retention.run()
                    if result.get("events") or result.get("pruned_snapshots") or result.get("orphans"):
                        log.info("retention: %s", result)
                except Exception:
                    log.exception("retention failed")
            if now >= next_checkpoint and self.store is not None:
                next_checkpoint = now + WAL_CHECKPOINT_INTERVAL_S
                self._checkpoint()

    def _checkpoint(self) -> None:
        assert self.store is not None
        try:
            complete, frames, done = self.store.checkpoint()
        except Exception:
            log.exception("database checkpoint failed")
            return
        if complete:
            log.debug("database checkpoint: %d WAL frame(s) written back, WAL truncated", done)
        else:
            log.warning("database checkpoint incomplete (%d of %d WAL frames): another connection "
                        "holds a read snapshot or a write", done, frames)

    # -- gallery ---------------------------------------------------------------------------

    def _load_gallery(self, conn: Any) -> Any:
        try:
            gallery = load_gallery(conn, self.pack, self.settings["pipeline.max_faces"])
        except Exception as exc:  # e.g. enrolled embeddings of another dimension
            self._problems["gallery"] = str(exc)
            log.error("gallery not loaded, every face is unknown: %s", exc)
            return None
        self._problems.pop("gallery", None)
        log.info("gallery loaded: %d embedding(s) of %d person(s)", len(gallery), len(gallery.people))
        return gallery

    def _maintain_gallery(self) -> None:
        """In the inference thread, the only place the gallery is swapped: a requested reload
        reads it afresh on a new connection (a restore may have replaced the database file);
        otherwise a cheap check picks up enrolments made by another process (``facepro enroll``)."""
        loop = self.loop
        if loop is None or self._gallery_conn is None:
            return
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self._gallery_conn.close()
            self._gallery_conn = connect(self.settings.db_path,
                                         busy_timeout_ms=self.settings["database.busy_timeout_ms"],
                                         check_same_thread=False)
            loop.gallery = self._load_gallery(self._gallery_conn)
            return
        if loop.gallery is None:
            if "gallery" in self._problems:
                loop.gallery = self._load_gallery(self._gallery_conn)
            return
        try:
            loop.gallery = loop.gallery.reload_if_changed(self._gallery_conn)
        except Exception as exc:
            self._problems["gallery"] = str(exc)
            log.error("gallery reload failed, keeping the previous one: %s", exc)

    def reload_gallery(self) -> None:
        """Ask for the enrolled embeddings to be read again (after an enrolment or a restore).

        Returns at once; the inference thread reloads before its next frame. Requests that
        arrive together give one reload."""
        if self.pack is None or self.loop is None:
            return
        self._reload_requested.set()
        self.loop.request_maintenance()

    def set_recognition(self, camera: str, enabled: bool) -> bool:
        """Pause or resume recognition on ``camera`` (kept across restarts); returns the
        state now (True: recognition runs). KeyError for a camera this pipeline does not run."""
        if camera not in {source.name for source in self.sources}:
            raise KeyError(camera)
        self.switches.set(camera, enabled)
        feed = self.loop.feed(camera) if self.loop is not None else None
        if feed is not None:
            feed.paused = not enabled
        return not self.switches.paused(camera)

    # -- what the other parts read ---------------------------------------------------------

    def cameras_status(self) -> list[dict[str, Any]]:
        out = []
        now = time.monotonic()
        for source in self.sources:
            status = source.status()
            feed: Feed | None = self.loop.feed(source.name) if self.loop is not None else None
            status["frames_processed"] = feed.frames_processed if feed else 0
            status["faces"] = feed.faces if feed else 0
            status["fps_processed"] = round(feed.processed_rate.rate(now), 2) if feed else 0.0
            status["fps_capture"] = round(source.capture_rate.rate(now), 2)
            status["detector_input"] = feed.detector_input if feed else None
            status["recognition_paused"] = self.switches.paused(source.name)
            status.update(detect_figures(source, feed, now))
            out.append(status)
        return out

    def latest_frame(self, camera: str) -> tuple[Any, float] | None:
        """A copy of ``camera``'s newest frame (BGR array) and its capture time, or None when
        it has none yet; KeyError for a camera that is not running."""
        for source in self.sources:
            if source.name == camera:
                return source.ring.copy_latest()
        raise KeyError(camera)

    def models_info(self) -> dict[str, Any]:
        if self.pack is None:
            return {"models_dir": str(self.settings.models_dir), "error": self._problems.get("models"),
                    "detector": None, "embedder": None}
        return self.pack.info()

    def healthy(self) -> tuple[bool, list[str]]:
        """Liveness, for the systemd watchdog: False only when a thread died or the worker is stuck.

        An offline camera or a missing model pack is not unhealthy (a restart would not fix
        it): those show in ``cameras_status()``, ``models_info()`` and ``problems()``.
        """
        problems: list[str] = []
        if not self._threads:
            return True, problems
        threads = {t.name: t for t in self._threads}
        if self.loop is not None:
            worker = threads.get("inference")
            if worker is None or not worker.is_alive():
                problems.append("inference worker thread stopped")
            elif time.monotonic() - self.loop.heartbeat > STUCK_AFTER_S:
                problems.append(f"inference worker stuck on one frame for more than {STUCK_AFTER_S:.0f} s")
        for source in self.sources:
            if not source.running and not source.finished and not self._stop.is_set():
                problems.append(f"camera {source.name}: capture thread stopped")
        return (not problems, problems)

    def problems(self) -> list[str]:
        """Everything that degrades recognition now (for the status page and logs)."""
        found = list(self._problems.values())
        gallery = self.loop.gallery if self.loop is not None else None
        if gallery is not None:
            found.extend(getattr(gallery, "warnings", []))
        if self.loop is not None and self.loop.error:
            found.append(f"last frame error: {self.loop.error}")
        for source in self.sources:
            if not source.online:
                found.append(f"camera {source.name} offline: {source.error or 'no frame yet'}")
        return found


def process_file(settings: Any, video: str | Path, camera_name: str, *, pack: Any = None, bus: Any = None,
                 metrics: Any = None, store: EventStore | None = None,
                 frame_hook: Callable[[InferenceLoop, Feed, FrameSlot], None] | None = None,
                 record_events: bool = True) -> dict[str, Any]:
    """Run the pipeline once over ``video``: every frame processed, none dropped.

    Raises SourceError naming the file when it is missing or cannot be decoded.
    """
    from edge.metrics import Metrics

    camera = {"name": camera_name, "source": str(video), "loop": False, "rate": "max", "stall_timeout_s": 30.0}
    cap = open_capture(camera)  # fail fast with a clear error before loading models
    ok, _ = cap.read()
    cap.release()
    if not ok:
        raise SourceError(f"camera {camera_name!r} (source {str(video)!r}): no frame could be decoded from {video}")
    metrics = metrics if metrics is not None else Metrics()
    pack = pack if pack is not None else load_pack(settings)
    own_store = store is None and record_events
    if own_store:
        store = EventStore(settings.db_path, busy_timeout_ms=settings["database.busy_timeout_ms"])
    sink = EventSink.from_settings(settings, store, bus=bus, metrics=metrics) if record_events and store is not None else None
    try:
        gallery_conn = connect(settings.db_path, busy_timeout_ms=settings["database.busy_timeout_ms"])
        try:
            gallery = load_gallery(gallery_conn, pack, settings["pipeline.max_faces"])
        finally:
            gallery_conn.close()
        loop = build_loop(settings, pack, sink, gallery, metrics)
        if frame_hook is not None:
            loop.frame_hook = lambda feed, slot: frame_hook(loop, feed, slot)
        ring = FrameRing(3, policy="lossless", on_commit=loop.notify)
        configured: dict[str, Any] = next((c for c in settings["cameras"] if c["name"] == camera_name), {})
        loop.add_camera(camera_name, ring, configured.get("det_max_side"))
        source = CameraSource(camera, ring, metrics=metrics, lossless=True)
        t0 = time.perf_counter()
        source.start()
        loop.run_until_drained(lambda: ring.closed or not source.running)
        elapsed = time.perf_counter() - t0
        source.stop()
        if source.frames_captured == 0:
            raise SourceError(f"camera {camera_name!r}: no frame could be decoded from {video}")
    finally:
        if own_store and store is not None:
            store.close()
    stages = metrics.stage_stats()
    events_by_person: dict[str, int] = dict(sink.counts) if sink is not None else {}
    return {
        "video": str(video),
        "camera": camera_name,
        "frames": source.frames_captured,
        "frames_processed": loop.frames_processed,
        "frames_dropped": ring.dropped,
        "faces": loop.faces,
        "faces_embedded": loop.faces_embedded,
        "events": sum(events_by_person.values()),
        "events_by_person": events_by_person,
        "seconds": round(elapsed, 3),
        "fps": round(loop.frames_processed / elapsed, 2) if elapsed > 0 else 0.0,
        "gallery_size": len(gallery) if gallery is not None else 0,
        "stages": {name: {"count": s["count"], "mean_ms": round(1000 * s["sum_s"] / max(s["count"], 1), 3),
                          "p50_ms": round(1000 * s["p50_s"], 3), "p95_ms": round(1000 * s["p95_s"], 3)}
                   for name, s in stages.items()},
        "ring_allocations": ring.allocations,
        "started_at": iso_utc(time.time() - elapsed),
    }
