"""Retention: which of this device's archives on a target are deleted."""
from __future__ import annotations

import logging

from edge.backup.targets import Target
from edge.db.backup_runs import BackupRunStore

log = logging.getLogger(__name__)


def prune_target(t: Target, keep: int, device_id: str, store: BackupRunStore, record: bool = True) -> list[str]:
    """Delete this device's archives beyond the newest ``keep``, but never the last good one.

    Good = recorded in backup_runs as written-and-verified (or verified/imported later).
    With no known good archive on the target nothing is deleted. Returns the removed names.
    """
    mine = [b for b in t.backups() if b["device"] == device_id]
    good = store.good_archives(t.name)
    if not any(b["name"] in good for b in mine):
        if len(mine) > keep:
            log.warning("%s: not pruning: no archive there is known to be good", t.describe())
        return []
    kept = {b["name"] for b in mine[-keep:]}
    if not kept & good:
        newest_good = [b["name"] for b in mine if b["name"] in good][-1]
        kept.add(newest_good)
    removed = []
    for b in mine:
        if b["name"] not in kept:
            t.remove(b["name"])
            removed.append(b["name"])
            log.info("retention: removed %s from %s", b["name"], t.name)
    if removed and record:
        store.record("prune", "ok", target=t.name, archive=",".join(removed))
    return removed
