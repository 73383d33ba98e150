"""Retention: which of this device's archives on a target are deleted.

Only what the device recorded counts: its own archives are the ones its backup log shows
it wrote to that target (``create`` ok), ordered by the log, never by file names anyone can
choose. Imported archives, other devices' archives and files the log does not know are
never counted towards ``keep`` and never deleted here (``facepro backup delete`` removes them,
and :func:`refuse_newest_own` keeps it from removing the device's newest own archive).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from edge.backup.archive import parse_name
from edge.backup.errors import NewestOwnKept
from edge.backup.targets import Target
from edge.db.backup_runs import BackupRunStore

log = logging.getLogger(__name__)


def prune_target(t: Target, keep: int, device_id: str, store: BackupRunStore, record: bool = True) -> list[str]:
    """Delete this device's own archives beyond the newest ``keep`` (by its backup log).

    The newest one the device wrote itself (written and read back, so good) is always among
    those kept. Returns the removed names.
    """
    present = {name for name in t.names() if parse_name(name) is not None}
    own = [name for name in store.own_archives(t.name) if name in present]
    removed = []
    for name in own[:-keep] if keep >= 1 else []:
        t.remove(name)
        removed.append(name)
        log.info("retention: removed %s from %s", name, t.name)
    unknown = present - set(own) - store.imported_archives(t.name)
    mine_unknown = sorted(n for n in unknown if (parse_name(n) or {}).get("device") == device_id)
    if mine_unknown:
        log.debug("%s: %d archive(s) named for this device are not in its backup log; not pruned",
                  t.describe(), len(mine_unknown))
    if removed and record:
        store.record("prune", "ok", target=t.name, archive=",".join(removed))
    return removed


def newest_own(target: str, present: Iterable[str], store: BackupRunStore) -> str | None:
    """Of the archives ``present`` on ``target``, the newest this device wrote there itself
    (by its backup log, so a good one; never by name)."""
    names = set(present)
    own = [archive for archive in store.own_archives(target) if archive in names]
    return own[-1] if own else None


def refuse_newest_own(t: Target, name: str, store: BackupRunStore) -> None:
    """Raise unless ``name`` may be deleted by hand: the newest archive this device wrote to
    ``t`` itself stays unless the caller forces it."""
    if newest_own(t.name, t.names(), store) == name:
        raise NewestOwnKept(f"{t.describe()}: {name} is the newest backup this device made itself there; "
                          "not deleted (pass --force to delete it anyway)", exit_code=2)
