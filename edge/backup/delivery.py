"""Storing a built archive on each target: write and verify, record the attempt, then
apply the target's retention."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.backup.archive import BuiltArchive
from edge.backup.retention import prune_target
from edge.backup.targets import Target, TargetError
from edge.db.backup_runs import BackupRunStore

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def deliver(built: BuiltArchive, targets: list[Target], *, device_id: str, store: BackupRunStore,
            includes: list[str], started_at: datetime, default_keep: int | None, report: Progress,
            record: bool = True) -> list[dict[str, Any]]:
    """One entry per target: {target, name, ok, error[, pruned]} (progress 0.7 to 1.0).
    A failing target does not stop the others; each target is closed afterwards."""
    results: list[dict[str, Any]] = []
    for index, t in enumerate(targets):
        t_start = time.monotonic()
        base = 0.7 + 0.3 * index / len(targets)
        done = 0

        def tick(n: int, base: float = base, t: Target = t) -> None:
            nonlocal done
            done += n
            report(base + 0.3 / len(targets) * min(1.0, done / max(built.size, 1)), f"writing to {t.name}")

        entry: dict[str, Any] = {"target": t.name, "name": built.path.name, "ok": False, "error": None}
        try:
            try:
                t.clean_partials(device_id)
            except (TargetError, OSError):
                pass
            t.store(built.path, built.path.name, built.sha256, progress=tick)
            entry["ok"] = True
        except (TargetError, OSError) as exc:
            entry["error"] = str(exc) if isinstance(exc, TargetError) else f"{t.describe()}: {exc}"
            log.error("backup to %s failed: %s", t.name, entry["error"])
        duration = time.monotonic() - t_start
        if record:
            store.record("create", "ok" if entry["ok"] else "failed", target=t.name,
                         archive=built.path.name, size_bytes=built.size, sha256=built.sha256,
                         duration_s=duration, error=entry["error"], includes=includes,
                         started_at=started_at)
        if entry["ok"]:
            log.info("backup %s written to %s and verified (%d bytes)", built.path.name, t.name, built.size)
            keep = t.keep or default_keep
            if keep:
                try:
                    entry["pruned"] = prune_target(t, int(keep), device_id, store, record=record)
                except (TargetError, OSError) as exc:
                    log.warning("pruning %s failed: %s", t.name, exc)
                if built.path.name in entry.get("pruned", []):
                    # Retention removing what was just written means it was tricked (or broken):
                    # a failed backup, so the backup_failed alert fires, never a quiet "ok".
                    entry["ok"] = False
                    entry["error"] = f"{t.describe()}: {built.path.name} was removed by retention right after it " \
                                     "was written"
                    log.error("backup to %s failed: %s", t.name, entry["error"])
                    if record:
                        store.record("create", "failed", target=t.name, archive=built.path.name,
                                     error=entry["error"], includes=includes, started_at=started_at)
        t.close()
        results.append(entry)
    return results
