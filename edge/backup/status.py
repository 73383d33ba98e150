"""The backup status telemetry and alerts read: last success, last result, next due,
overdue, missing targets."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from edge.backup.target_specs import TargetSpecs, make_target
from edge.backup.targets import TargetError
from edge.db.backup_runs import BackupRunStore
from edge.schedule import Schedule
from edge.timestamps import from_db, iso_utc


def backup_status(store: BackupRunStore, schedule: Schedule | None, specs: TargetSpecs,
                  since: datetime) -> dict[str, Any]:
    """The status from the backup log; ``since`` (when the service started) counts as the
    last success for ``overdue`` when there never was one."""
    last = store.last("create")
    last_ok = store.last("create", "ok")
    last_success = from_db(last_ok["finished_at"]) if last_ok else None
    last_attempt = from_db(last["finished_at"]) if last else None
    enabled = specs.enabled()
    status: dict[str, Any] = {
        "last_success_at": iso_utc(last_success),
        "last_result": last["result"] if last else None,
        "last_error": last["error"] if last and last["result"] == "failed" else None,
        "last_attempt_at": iso_utc(last_attempt),
        "last_target": last["target"] if last else None,
        "schedule": schedule.text if schedule else None,
        "next_due_at": None,
        "overdue": False,
        "targets_missing": [],
        "targets": [s["name"] for s in enabled],
    }
    if schedule is not None and status["targets"]:
        now_local = datetime.now()
        last_local = last_success.astimezone().replace(tzinfo=None) if last_success else None
        due = schedule.next_due(last_local, now_local)
        status["next_due_at"] = iso_utc(due.astimezone(timezone.utc))
        grace = max(timedelta(hours=1), schedule.period / 2)
        reference = last_success or since
        status["overdue"] = datetime.now(timezone.utc) - reference > schedule.period + grace
    for spec in enabled:
        if spec["type"] in ("usb", "mounted"):
            try:
                make_target(spec).check()
            except TargetError as exc:
                status["targets_missing"].append({"name": spec["name"], "detail": str(exc)})
    return status
