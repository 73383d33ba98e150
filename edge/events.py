"""Recognition events: cooldown, snapshot JPEG, ``events`` row, bus message; and retention.

A face whose best gallery similarity is >= ``recognition.match_threshold`` is a
``face_recognized`` event for that person, any other face a ``face_unknown`` event. Each
(camera, person) pair - and (camera, unknown) - produces at most one event per
``recognition.cooldown_s``, measured on the frame's clock (the stream position for a file
processed with ``facepro process``, the capture time for live cameras).

Order of writes for one event: snapshot to ``<name>.tmp``, fsync, rename; then the row; then
the bus. A crash between leaves at most an orphan snapshot, which retention removes.

Retention keeps a device that is left alone from filling its disk: rows and snapshots older
than ``events.retention_days`` (0 keeps them forever) are deleted, and while the free space
under the data directory is below ``events.min_free_mb`` the oldest snapshots are deleted
first (their rows stay, with ``snapshot_path`` NULL); with no snapshot left to prune, new
events are recorded without one.

A full disk (a write fails with ENOSPC, SQLite's "database or disk is full") sets the shared
:class:`edge.telemetry.storage.DiskFullState`. Events then still go on the bus with
``id`` None and ``stored`` False (the MQTT publisher sends those from memory), and are
held in memory by that state (bounded: the oldest are counted as lost beyond it); once space
returns they are written, in order, before the next one.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.db.events import EventStore
from edge.files import inside
from edge.telemetry.storage import DiskFullState

log = logging.getLogger(__name__)

RECOGNIZED = "face_recognized"
UNKNOWN = "face_unknown"
UNKNOWN_LABEL = "unknown"
SNAPSHOT_DIR = "snapshots"
PRUNE_MARGIN = 1.2  # pruning for space frees up to 1.2x events.min_free_mb


@dataclass
class Event:
    id: int | None  # None: not stored yet (the disk is full), held in memory
    type: str
    person: str | None
    confidence: float
    camera: str
    created_at: float
    snapshot: str | None

    @property
    def timestamp(self) -> str:
        return datetime.fromtimestamp(int(self.created_at), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def payload(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "person": self.person, "confidence": round(self.confidence, 4),
                "camera": self.camera, "timestamp": self.timestamp, "snapshot": self.snapshot}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:48] or "x"


def free_mb(path: Path) -> float:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / (1024 * 1024)


class Retention:
    """Age and low-disk pruning of events and their snapshots."""

    def __init__(self, store: EventStore, data_dir: Path, retention_days: float, min_free_mb: float,
                 batch: int = 64) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.snapshot_root = self.data_dir / SNAPSHOT_DIR
        self.retention_days = float(retention_days)
        self.min_free_mb = float(min_free_mb)
        self.batch = batch

    def disk_low(self, margin: float = 1.0) -> bool:
        return self.min_free_mb > 0 and free_mb(self.data_dir) < self.min_free_mb * margin

    def _unlink(self, relative: str) -> bool:
        # The row may come from a restored archive: only a file under snapshots/ is deleted.
        path = inside(self.data_dir, relative)
        if path is None or not path.is_relative_to(self.snapshot_root.resolve()):
            log.warning("ignoring the snapshot path %r of an event: it is not inside %s", relative[:200],
                        self.snapshot_root)
            return False
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("cannot delete snapshot %s: %s", path, exc)
            return False

    def prune_age(self, now: float | None = None) -> dict[str, int]:
        if self.retention_days <= 0:
            return {"events": 0, "snapshots": 0, "orphans": 0}
        cutoff = (time.time() if now is None else now) - self.retention_days * 86400
        paths = self.store.delete_older_than(cutoff)
        removed = sum(self._unlink(p) for p in paths)
        orphans = 0
        if self.snapshot_root.is_dir():
            for path in self.snapshot_root.rglob("*"):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    orphans += 1
        self._remove_empty_dirs()
        return {"events": len(paths), "snapshots": removed, "orphans": orphans}

    def ensure_space(self) -> dict[str, Any]:
        """Delete the oldest snapshots while free space is below ``min_free_mb``.

        Once pruning, it frees up to ``PRUNE_MARGIN`` times the minimum so that it does not
        run again for every new snapshot.
        """
        pruned = 0
        if not self.disk_low():
            return {"pruned_snapshots": 0, "disk_low": False}
        while self.disk_low(PRUNE_MARGIN):
            oldest = self.store.oldest_snapshots(self.batch)
            if not oldest:
                pruned += self._prune_orphans_for_space()
                break
            done: list[int] = []
            for event_id, rel in oldest:
                self._unlink(rel)
                done.append(event_id)
                if not self.disk_low(PRUNE_MARGIN):
                    break
            self.store.clear_snapshots(done)
            pruned += len(done)
        if pruned:
            self._remove_empty_dirs()
            log.warning("low disk under %s: pruned %d oldest snapshot(s); %.1f MB free (minimum %.1f MB)",
                        self.data_dir, pruned, free_mb(self.data_dir), self.min_free_mb)
        return {"pruned_snapshots": pruned, "disk_low": self.disk_low()}

    def _prune_orphans_for_space(self) -> int:
        if not self.snapshot_root.is_dir():
            return 0
        referenced = self.store.snapshot_paths()
        files = sorted((p for p in self.snapshot_root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
        removed = 0
        for path in files:
            if not self.disk_low(PRUNE_MARGIN):
                break
            if str(path.relative_to(self.data_dir)) not in referenced:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def run(self, now: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = dict(self.prune_age(now))
        result.update(self.ensure_space())
        return result

    def _remove_empty_dirs(self) -> None:
        if not self.snapshot_root.is_dir():
            return
        for path in sorted(self.snapshot_root.rglob("*"), reverse=True):
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError:
                    pass


class EventSink:
    """Turns per-frame face matches into events, honouring the cooldown."""

    def __init__(self, store: EventStore, data_dir: Path, *, bus: Any = None, metrics: Any = None,
                 match_threshold: float = 0.40, cooldown_s: float = 10.0, snapshot_quality: int = 85,
                 retention_days: float = 90, min_free_mb: float = 512, storage: DiskFullState | None = None,
                 publish_unstored: bool = False) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.bus = bus
        self.metrics = metrics
        self.match_threshold = float(match_threshold)
        self.cooldown_s = float(cooldown_s)
        self.snapshot_params = [cv2.IMWRITE_JPEG_QUALITY, int(min(max(snapshot_quality, 1), 100))]
        self.retention = Retention(store, self.data_dir, retention_days, min_free_mb)
        self._last: dict[tuple[str, str | None], float] = {}
        self._space_checked_at = 0.0
        self._snapshots_off = False
        self.counts: dict[str, int] = {}
        self.storage = storage if storage is not None else DiskFullState(self.data_dir, bus=bus)
        # True when MQTT sends unstored events from memory: written late, they count as published.
        self.publish_unstored = bool(publish_unstored)

    @classmethod
    def from_settings(cls, settings: Any, store: EventStore, bus: Any = None, metrics: Any = None,
                      storage: DiskFullState | None = None) -> EventSink:
        return cls(store, settings.data_dir, bus=bus, metrics=metrics, storage=storage,
                   publish_unstored=bool(settings["mqtt.enabled"]),
                   match_threshold=settings["recognition.match_threshold"],
                   cooldown_s=settings["recognition.cooldown_s"],
                   snapshot_quality=settings["events.snapshot_quality"],
                   retention_days=settings["events.retention_days"],
                   min_free_mb=settings["events.min_free_mb"])

    def _due(self, camera: str, person: str | None, clock: float) -> bool:
        last = self._last.get((camera, person))
        return last is None or clock - last >= self.cooldown_s or clock < last

    def handle(self, camera: str, frame: np.ndarray, persons: Sequence[str | None], similarities: Sequence[float],
               det_scores: Sequence[float], clock: float, captured_at: float | None = None) -> list[Event]:
        """Record the events one frame produces.

        ``persons[i]`` is face i's best gallery match (None when the gallery is empty) and
        ``similarities[i]`` its cosine similarity; ``clock`` is the cooldown clock in seconds.
        """
        best_known: dict[str, tuple[float, float]] = {}  # person -> (similarity, detector score)
        unknown_score = -1.0
        for person, sim, det in zip(persons, similarities, det_scores):
            if person is not None and sim >= self.match_threshold:
                if sim > best_known.get(person, (-2.0, 0.0))[0]:
                    best_known[person] = (float(sim), float(det))
            elif det > unknown_score:
                unknown_score = float(det)
        if not best_known and unknown_score < 0:
            return []
        events: list[Event] = []
        when = time.time() if captured_at is None else captured_at
        for person, (sim, det) in best_known.items():
            if self._due(camera, person, clock):
                self._last[(camera, person)] = clock
                events.append(self._record(RECOGNIZED, person, sim, camera, frame, when, det))
        if unknown_score >= 0 and self._due(camera, None, clock):
            self._last[(camera, None)] = clock
            events.append(self._record(UNKNOWN, None, unknown_score, camera, frame, when, unknown_score))
        return events

    def _record(self, event_type: str, person: str | None, confidence: float, camera: str,
                frame: np.ndarray, when: float, detector_score: float | None = None) -> Event:
        label = person if person is not None else UNKNOWN_LABEL
        t0 = time.perf_counter()
        snapshot = self._write_snapshot(frame, camera, label, event_type, when)
        uid = str(uuid.uuid4())
        event_id = self._insert((event_type, label, confidence, camera, snapshot, when, "face", detector_score, uid))
        t1 = time.perf_counter()
        event = Event(event_id, event_type, person, confidence, camera, when, snapshot)
        if self.bus is not None:
            payload = event.payload()
            if event_id is None:  # held in memory: MQTT sends it as it is, with its lasting id
                payload.update(stored=False, uid=uid, detector_score=detector_score)
            self.bus.publish("event", payload)
        t2 = time.perf_counter()
        if self.metrics is not None:
            self.metrics.observe("persist", t1 - t0, camera)
            self.metrics.observe("publish", t2 - t1, camera)
            self.metrics.incr("events", 1, camera)
        self.counts[label] = self.counts.get(label, 0) + 1
        if person is not None:
            log.info("recognized %s on camera %s (similarity %.2f) event %s", person, camera, confidence,
                     event_id or "held in memory")
        else:
            log.info("unknown face on camera %s (detector score %.2f) event %s", camera, confidence,
                     event_id or "held in memory")
        return event

    # -- a full disk: the event is held in memory (by the storage state) until space returns --

    def _insert(self, row: tuple[Any, ...]) -> int | None:
        """The new row's id; None when the disk is full and the event is held in memory."""
        storage = self.storage
        if storage.full and not storage.retry_due():
            storage.hold(row)
            return None
        try:
            storage.flush(self._write_late)
            event_id = self.store.insert(*row)
        except Exception as exc:
            if not storage.report(exc, "event row"):
                raise
            storage.hold(row)
            return None
        storage.recovered()
        return event_id

    def _write_late(self, row: Any) -> None:
        self.store.insert(*row, published=self.publish_unstored)

    def retry_pending(self) -> None:
        """Write the held events once space returns, even when no new event comes (housekeeping)."""
        self.storage.retry(self._write_late, "held event rows")

    def _write_snapshot(self, frame: np.ndarray, camera: str, label: str, event_type: str, when: float) -> str | None:
        if not self._space_ok(when):
            return None
        stamp = datetime.fromtimestamp(when, timezone.utc)
        day = stamp.strftime("%Y-%m-%d")
        name = f"{stamp.strftime('%H%M%S')}-{int((when % 1) * 1000):03d}-{_slug(camera)}-{_slug(label)}.jpg"
        relative = f"{SNAPSHOT_DIR}/{day}/{name}"
        path = self.data_dir / relative
        ok, encoded = cv2.imencode(".jpg", frame, self.snapshot_params)
        if not ok:
            log.warning("camera %s: could not encode a snapshot", camera)
            return None
        counter = 1
        while path.exists():  # two events in the same millisecond
            path = path.with_name(f"{path.stem.rsplit('~', 1)[0]}~{counter}.jpg")
            counter += 1
        relative = path.relative_to(self.data_dir).as_posix()
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(encoded.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if not self.storage.report(exc, "snapshot"):  # a full disk is logged once, by the state
                log.warning("camera %s: snapshot %s not written: %s", camera, path, exc)
            return None
        return relative

    def _space_ok(self, when: float) -> bool:
        """Checked at most every 5 s: prune the oldest snapshots if the disk is low."""
        if self.storage.full:
            return False
        if when - self._space_checked_at < 5.0 and not self._snapshots_off:
            return True
        if when - self._space_checked_at < 5.0:
            return False
        self._space_checked_at = when
        if self.retention.disk_low():
            try:
                self.retention.ensure_space()
            except Exception as exc:  # pruning writes to the database too
                if not self.storage.report(exc, "snapshot pruning"):
                    raise
                return False
            if self.retention.disk_low():
                if not self._snapshots_off:
                    log.warning("disk under %s below %.0f MB even after pruning: events are recorded "
                                "without snapshots", self.data_dir, self.retention.min_free_mb)
                self._snapshots_off = True
                return False
        self._snapshots_off = False
        return True
