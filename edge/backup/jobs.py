"""Background backup and restore jobs: one thread each, with progress a caller can poll
(:meth:`JobRunner.job`) and records on the bus topic ``backup``.

A job record: {id, kind, state (running, ok, failed), progress (0..1), message, result,
started_at, finished_at}. The 50 newest are remembered.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from edge.backup.errors import BackupError
from edge.errors import FaceproError
from edge.timestamps import now_iso

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Work = Callable[[Progress], dict[str, Any]]
KEEP_JOBS = 50
PUBLISH_EVERY_S = 0.5


class Bus(Protocol):
    def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class JobRunner:
    def __init__(self, bus: Bus | None = None) -> None:
        self.bus = bus
        self._jobs: dict[str, dict[str, Any]] = {}
        self._done: dict[str, threading.Event] = {}

    def start(self, kind: str, work: Work, **about: str) -> str:
        """Run ``work(progress)`` in a thread; returns the job id. ``about`` (e.g. the
        archive a restore reads) is kept in the job's record."""
        job_id = uuid.uuid4().hex[:12]
        job: dict[str, Any] = {**about, "id": job_id, "kind": kind, "state": "running", "progress": 0.0,
                               "message": "starting", "result": None, "started_at": now_iso()}
        self._jobs[job_id] = job
        done = self._done[job_id] = threading.Event()
        last_pub = [0.0]

        def progress(fraction: float, message: str) -> None:
            job["progress"] = round(max(job["progress"], min(1.0, fraction)), 3)
            job["message"] = message
            now = time.monotonic()
            if now - last_pub[0] >= PUBLISH_EVERY_S:
                last_pub[0] = now
                self._publish(job)

        def run() -> None:
            try:
                result = work(progress)
                job["result"] = result
                job["state"] = "ok" if result.get("ok", True) else "failed"
                job["message"] = "done" if job["state"] == "ok" else "; ".join(result.get("errors") or ["failed"])
            except Exception as exc:
                job["state"] = "failed"
                job["message"] = str(exc)
                if not isinstance(exc, FaceproError):
                    log.exception("backup job %s failed", job_id)
            job["progress"] = 1.0 if job["state"] == "ok" else job["progress"]
            job["finished_at"] = now_iso()
            self._publish(job)
            done.set()

        self._publish(job)
        threading.Thread(target=run, name=f"backup-{kind}-{job_id}", daemon=True).start()
        self._forget_old()
        return job_id

    def _forget_old(self) -> None:
        while len(self._jobs) > KEEP_JOBS:
            oldest = next((k for k, j in self._jobs.items() if j["state"] != "running"), None)
            if oldest is None:
                break
            del self._jobs[oldest]
            self._done.pop(oldest, None)

    def job(self, job_id: str) -> dict[str, Any]:
        """A copy of the job's record; BackupError for an unknown (or forgotten) id."""
        job = self._jobs.get(job_id)
        if job is None:
            raise BackupError(f"no backup job {job_id!r}")
        return dict(job)

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job's record once it has finished, or as it is when ``timeout`` runs out."""
        done = self._done.get(job_id)
        if done is not None:
            done.wait(timeout)
        return self.job(job_id)

    def _publish(self, job: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish("backup", {"job": job["id"], "kind": job["kind"], "state": job["state"],
                                        "progress": job["progress"], "message": job["message"],
                                        "result": job["result"]})
