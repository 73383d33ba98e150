"""Restore: verify everything in a staging area, then switch over through a journal.

Order (each step either repeatable or before the commit point):

1. the archive is decrypted, every member checked against the manifest and extracted into
   ``<data_dir>/.restore/`` (nothing outside it is written; unsafe members are refused);
2. a database newer than the code is refused; an older one is migrated forward *in
   staging* and ``integrity_check``-ed there; settings are merged and validated there;
3. a pre-restore backup of the current state goes to ``<data_dir>/backups/pre-restore/``;
4. COMMIT POINT: ``<data_dir>/restore.journal`` is written (temp, fsync, rename, fsync dir);
5. roll forward: the database is copied into the live file with SQLite's backup API (one
   transaction: readers see the old or the new database), the faces directory is swapped
   by two renames, the settings file replaced by rename; then the journal is removed.

Power loss or SIGKILL before 4 leaves the old state (the staging area is discarded at the
next start); after 4 every start (``facepro run`` and every backup command) repeats step 5
until it completes, so the data dir ends up entirely new, never a mix.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.backup import archive as arc
from edge.backup import crypto, restore_settings
from edge.backup.errors import BackupError
from edge.backup.faults import pause_point
from edge.backup.lock import BackupLock
from edge.config import ConfigError, Settings, default_settings_text, load_settings
from edge.db.archive_db import (
    carry_backup_log,
    checkpoint_truncate,
    copy_into_live,
    integrity,
)
from edge.db.backup_runs import BackupRunStore
from edge.db.migrator import MigrationError, Migrator
from edge.errors import FaceproError
from edge.files import fsync_dir, write_atomic

log = logging.getLogger(__name__)

RESTORE_DIR = ".restore"
JOURNAL = "restore.journal"
DEVICE_OWN_SECTIONS = ("paths", "database")  # the device's own layout survives a settings restore

Progress = Callable[[float, str], None]
# Where the archive is: given the download directory inside staging, a local path and a label.
Resolve = Callable[[Path], tuple[Path, str]]
# Takes the pre-restore backup of the current state (the lock is held); returns its path.
PreBackup = Callable[[], str | None]


def recover_interrupted_restore(settings: Settings) -> str | None:
    """Finish (journal present) or discard (no journal) a restore cut short. Returns what it did.

    Called at boot before migrations and by every backup command. The caller must hold
    the backup lock or be the only process (boot).
    """
    data_dir = settings.data_dir
    journal_path = data_dir / JOURNAL
    staging = data_dir / RESTORE_DIR
    if journal_path.exists():
        journal = json.loads(journal_path.read_text())
        log.warning("completing an interrupted restore of %s", journal.get("archive"))
        _apply(settings, journal)
        return "completed"
    if staging.exists():
        log.warning("discarding the staging area of an interrupted restore (nothing was changed)")
        shutil.rmtree(staging, ignore_errors=True)
        return "discarded"
    return None


def _apply(settings: Settings, journal: dict[str, Any]) -> None:
    """Step 5, idempotent: repeating it after a crash at any point converges to the new state."""
    data_dir = settings.data_dir
    staging = data_dir / RESTORE_DIR
    content = staging / "content"
    parts = journal["parts"]
    if "db" in parts:
        staged = content / arc.DB_MEMBER
        copy_into_live(staged, settings.db_path, settings.get("database.busy_timeout_ms", 5000))
        pause_point("restore-db-swapped")
    if "faces" in parts:
        live, new, old = data_dir / "faces", content / "faces", staging / "faces.old"
        if new.exists():
            if live.exists():
                if old.exists():
                    shutil.rmtree(old)
                os.rename(live, old)
            os.rename(new, live)
            fsync_dir(data_dir)
    if "settings" in parts and journal.get("settings_dest"):
        prepared = staging / "settings.prepared.json"
        if prepared.exists():
            write_atomic(Path(journal["settings_dest"]), prepared.read_bytes())
            prepared.unlink()
    (data_dir / JOURNAL).unlink()
    fsync_dir(data_dir)
    shutil.rmtree(staging, ignore_errors=True)


def _prepare_settings(settings: Settings, verified: arc.VerifiedArchive, staging: Path, accept: str | None,
                      result: dict[str, Any]) -> str | None:
    """Write the merged, validated settings into staging; returns the destination path.

    Masked secrets follow only an unchanged endpoint (see :mod:`edge.backup.restore_settings`);
    security-relevant changes are refused unless ``accept`` is ``"all"`` or their digest."""
    dest = settings.source
    if dest is None:
        raise RestoreError("settings: this facepro runs without a device settings file (--config), "
                           "so there is nothing to restore the settings into; use --include db,faces")
    assert verified.settings_path is not None
    try:
        backup = json.loads(verified.settings_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RestoreError(f"settings.json in the archive is not valid JSON: {exc.msg}") from None
    current: dict[str, Any] = {}
    if Path(dest).is_file():
        with contextlib.suppress(json.JSONDecodeError, OSError):
            current = json.loads(Path(dest).read_text(encoding="utf-8"))
    if not isinstance(backup, dict):
        raise RestoreError("settings.json in the archive is not a JSON object")
    defaults = json.loads(default_settings_text())
    merged, cleared = restore_settings.prepare(backup, current, settings.data, defaults)
    for section in DEVICE_OWN_SECTIONS:
        if section in current:
            merged[section] = current[section]
        else:
            merged.pop(section, None)
    prepared = staging / "settings.prepared.json"
    check = Path(dest).parent / f".{Path(dest).name}.restore-check"
    text = json.dumps(merged, indent=2) + "\n"
    try:
        check.write_text(text)  # beside the destination so relative paths resolve the same way
        restored = load_settings(check, env={})
    except ConfigError as exc:
        raise RestoreError(f"the archive's settings are not valid for this facepro: {exc}") from None
    finally:
        check.unlink(missing_ok=True)
    changes = restore_settings.security_changes(settings.data, restored.data)
    result["security_changes"], result["secrets_cleared"] = changes, cleared
    if changes and accept not in ("all", restore_settings.digest(changes)):
        raise SecurityChangesRefused(changes, accept is not None)
    for key in cleared:
        log.warning("restore: %s left empty: the restored settings point it at another host, port or user", key)
    write_atomic(prepared, text.encode())  # read back after the commit point: it must be on disk
    return str(dest)


class RestoreError(FaceproError):
    """The restore was refused or failed before anything changed."""


class SecurityChangesRefused(RestoreError):
    """The archive's settings change security-relevant settings that were not accepted."""

    def __init__(self, changes: list[str], confirmed_other: bool = False) -> None:
        self.changes = changes
        self.digest = restore_settings.digest(changes)
        why = "they differ from the changes confirmed" if confirmed_other else "not confirmed"
        super().__init__(f"restore refused ({why}): the archive's settings change security-relevant settings: "
                         f"{'; '.join(changes)}; to restore them, confirm these changes "
                         "(facepro backup restore --accept-security-changes)", exit_code=2)


def restore_archive(settings: Settings, archive: str | Path, includes: list[str] | None, *,
                    lock: BackupLock, keys: crypto.KeySource | None, resolve: Resolve,
                    store: BackupRunStore, pre_backup: PreBackup | None = None,
                    progress: Progress | None = None, accept_security: str | None = None) -> dict[str, Any]:
    """Restore ``includes`` (None: all the archive holds) from ``archive`` under ``lock``.

    ``resolve`` finds the archive, ``keys`` decrypt it, ``pre_backup`` (when given) saves
    the current state before the commit point; every attempt is recorded in ``store``.
    Raises :class:`BackupError`; before the commit point nothing has changed.
    """
    report = progress or (lambda _f, _m: None)
    data_dir = settings.data_dir
    started = time.monotonic()
    label = str(archive)
    with lock.exclusive():
        recover_interrupted_restore(settings)
        staging = data_dir / RESTORE_DIR
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            path, label = resolve(staging / "download")
            report(0.0, "verifying the archive")
            verified = arc.verify_archive(path, staging, keys, extract=True,
                                          progress=lambda f, m: report(0.4 * f, m), label=label)
            shutil.rmtree(staging / "download", ignore_errors=True)
            manifest = verified.manifest
            available = set(manifest["includes"])
            wanted = includes if includes is not None else [p for p in arc.PARTS if p in available]
            missing = [p for p in wanted if p not in available]
            if missing:
                raise RestoreError(f"{label}: the archive does not contain {', '.join(missing)} "
                                   f"(it has {', '.join(manifest['includes']) or 'nothing'})")
            if not wanted:
                raise RestoreError(f"{label}: nothing to restore")
            result: dict[str, Any] = {"ok": False, "archive": label, "restored": wanted,
                                      "backup_created_at": manifest.get("created_at"),
                                      "backup_device_id": manifest.get("device_id"),
                                      "schema_version": manifest.get("schema_version")}
            if "db" in wanted:
                report(0.45, "checking the database")
                result["migrated"] = _prepare_db(verified, label, staging, settings.db_path)
            if "faces" in wanted:
                verified.faces_dir.mkdir(exist_ok=True)  # an empty faces/ restores as empty
            settings_dest = _prepare_settings(settings, verified, staging, accept_security, result) \
                if "settings" in wanted else None
            if pre_backup is not None:
                report(0.55, "backing up the current state")
                result["pre_restore_backup"] = pre_backup()
            journal = {"version": 1, "archive": label, "parts": wanted, "settings_dest": settings_dest,
                       "created_at": manifest.get("created_at")}
            report(0.8, "switching over")
            pause_point("restore-before-commit")
            write_atomic(data_dir / JOURNAL, json.dumps(journal).encode())  # the commit point
            pause_point("restore-committed")
            _apply(settings, journal)
        except (arc.ArchiveError, crypto.CryptoError, RestoreError, MigrationError, BackupError) as exc:
            if not (data_dir / JOURNAL).exists():
                shutil.rmtree(staging, ignore_errors=True)
            store.record("restore", "failed", archive=Path(label).name, error=str(exc),
                         duration_s=time.monotonic() - started, includes=includes)
            raise BackupError(str(exc), exit_code=exc.exit_code) from exc
        except BaseException:
            if not (data_dir / JOURNAL).exists():
                shutil.rmtree(staging, ignore_errors=True)
            raise
    result["ok"] = True
    result["restart_required"] = "settings" in wanted  # a running service keeps its loaded settings
    result["duration_s"] = round(time.monotonic() - started, 3)
    store.record("restore", "ok", archive=Path(label).name, duration_s=result["duration_s"],
                 includes=wanted)
    report(1.0, "done")
    log.info("restored %s from %s", ", ".join(wanted), label)
    return result


def _prepare_db(verified: arc.VerifiedArchive, label: str, staging: Path, live_db: Path) -> list[int]:
    staged = verified.db_path
    assert staged is not None
    with Migrator(staged, snapshot_dir=staging / "pre-migrate") as migrator:
        version = migrator.current_version()
        if version > migrator.latest_version:
            raise RestoreError(f"{label}: the backup's database schema ({version:03d}) is newer than this "
                               f"facepro ({migrator.latest_version:03d}); upgrade facepro first")
        check = integrity(migrator.conn)
        if check != "ok":
            raise RestoreError(f"{label}: the backup's database fails integrity_check: {check}")
        applied = migrator.migrate()
        # The device's backup log describes the device, not the snapshot: keep the live one, so
        # retention still knows which archives were verified. It travels inside the staged
        # database, so the switch-over stays one atomic copy.
        carry_backup_log(live_db, migrator.conn)
        checkpoint_truncate(migrator.conn)
    shutil.rmtree(staging / "pre-migrate", ignore_errors=True)
    return applied


def preview_settings(settings: Settings, lock: BackupLock, keys: crypto.KeySource | None,
                     resolve: Resolve) -> dict[str, Any]:
    """What restoring the archive's settings would change, without changing anything:
    {security_changes, digest, secrets_cleared} (empty lists when it holds no settings).
    The web wizard shows these and asks for exactly them to be confirmed."""
    staging = settings.data_dir / f"{RESTORE_DIR}-preview"
    with lock.exclusive():
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            path, label = resolve(staging / "download")
            verified = arc.verify_archive(path, staging / "check", keys, extract=True, label=label)
            found: dict[str, Any] = {"security_changes": [], "secrets_cleared": []}
            if verified.settings_path is not None and settings.source is not None:
                _prepare_settings(settings, verified, staging, "all", found)
        except (arc.ArchiveError, crypto.CryptoError, RestoreError) as exc:
            raise BackupError(str(exc), exit_code=exc.exit_code) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    found["digest"] = restore_settings.digest(found["security_changes"])
    return found
