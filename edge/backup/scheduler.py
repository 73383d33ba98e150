"""The ``backup`` component of ``facepro run``: runs scheduled backups in a thread."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from edge.backup.errors import BackupError
from edge.backup.manager import BackupManager
from edge.timestamps import from_db

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(hours=1)  # a failed scheduled backup is retried this long after the attempt


class BackupScheduler:
    name = "backup"

    def __init__(self, manager: BackupManager, startup_delay_s: float = 60.0, poll_s: float = 30.0) -> None:
        self.manager = manager
        self.startup_delay_s = startup_delay_s
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.manager.schedule is None:
            log.info("automatic backups are off (backup.schedule is null)")
            return
        if not any(s.get("enabled", True) for s in self.manager.target_specs):
            log.info("backup.schedule is %r but no backup target is configured: automatic backups off",
                     self.manager.schedule.text)
            return
        self._thread = threading.Thread(target=self._loop, name="backup-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def due(self, now_local: datetime | None = None) -> bool:
        schedule = self.manager.schedule
        if schedule is None:
            return False
        now_local = now_local or datetime.now()
        store = self.manager.store
        last_ok = store.last("create", "ok")
        last_any = store.last("create")

        def local(row: dict | None) -> datetime | None:
            t = from_db(row["finished_at"]) if row else None
            return t.astimezone().replace(tzinfo=None) if t else None

        due_at = schedule.next_due(local(last_ok), now_local)
        attempt = local(last_any)
        if attempt is not None and (last_any or {}).get("result") == "failed":
            due_at = max(due_at, attempt + min(RETRY_AFTER, schedule.period))
        return due_at <= now_local

    def _loop(self) -> None:
        if self._stop.wait(self.startup_delay_s):
            return
        while not self._stop.is_set():
            try:
                schedule = self.manager.schedule
                if schedule is not None and self.due():
                    log.info("scheduled backup starting (%s)", schedule.text)
                    # As a job: progress and the result go out on the bus like an on-demand backup.
                    job_id = self.manager.start()
                    while self.manager.job(job_id)["state"] == "running":
                        self._stop.wait(0.5)
                    job = self.manager.job(job_id)
                    if job["state"] != "ok":
                        log.error("scheduled backup failed: %s", job["message"])
            except BackupError as exc:
                log.error("scheduled backup failed: %s", exc)
            except Exception:
                log.exception("scheduled backup crashed")
            self._stop.wait(self.poll_s)
