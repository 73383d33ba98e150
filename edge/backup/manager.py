"""BackupManager: create, list, verify, prune, delete, import and restore backups.

A thin front door over the backup package: :mod:`~edge.backup.target_specs` (settings to
targets), :mod:`~edge.backup.lock` (one operation at a time per data directory, so the CLI
and the running service never interleave), :mod:`~edge.backup.builder` and
:mod:`~edge.backup.delivery` (create), :mod:`~edge.backup.retention`,
:mod:`~edge.backup.restore`, :mod:`~edge.backup.jobs` (background jobs, published on the bus topic ``backup``)
and :mod:`~edge.backup.status`. Every attempt is recorded in ``backup_runs``; README "Backups" has the user's view.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from edge.backup import archive as arc
from edge.backup import crypto
from edge.backup.builder import ArchiveBuilder
from edge.backup.delivery import deliver
from edge.backup.errors import BackupError
from edge.backup.faults import pause_point
from edge.backup.jobs import Bus, JobRunner
from edge.backup.lock import BackupLock
from edge.backup.pacing import remove_tree_gently
from edge.backup.restore import preview_settings, recover_interrupted_restore, restore_archive
from edge.backup.retention import newest_own, prune_target, refuse_newest_own
from edge.backup.status import backup_status
from edge.backup.target_specs import TargetSpecs, make_target
from edge.backup.targets import LocalTarget, Target, TargetError
from edge.backup.verify import check_members
from edge.config import Settings
from edge.db.backup_runs import BackupRunStore
from edge.metrics import Metrics
from edge.schedule import parse_schedule

log = logging.getLogger(__name__)

STAGING_DIR = ".backup-staging"
VERIFY_DIR = ".backup-verify"
PRE_RESTORE_KEEP = 3
Progress = Callable[[float, str], None]
Include = list[str] | str | None
Names = list[str]  # the class's list() method hides the builtin inside the class body


class BackupManager:
    def __init__(self, settings: Settings, device_id: str, bus: Bus | None = None,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.device_id = device_id
        self.bus = bus
        self.metrics = metrics
        self.data_dir = settings.data_dir
        self.db_path = settings.db_path
        self.store = BackupRunStore(self.db_path, settings.get("database.busy_timeout_ms", 5000))
        self.schedule = parse_schedule(settings.get("backup.schedule"))
        self.created_at = datetime.now(timezone.utc)
        self.specs = TargetSpecs(settings, device_id)
        self.lock = BackupLock(self.data_dir)
        self.builder = ArchiveBuilder(settings, device_id, self.store)
        self.jobs = JobRunner(bus)
        self._status_cache: tuple[float, dict[str, Any]] | None = None

    # -- settings ------------------------------------------------------------------------
    @property
    def target_specs(self) -> list[dict[str, Any]]:
        return self.specs.all()

    def write_keys(self) -> crypto.KeySource | None:
        enc = self.settings.get("backup.encrypt") or {}
        if not enc.get("enabled"):
            return None
        return crypto.KeySource(enc.get("passphrase"), enc.get("key_file"))

    def read_keys(self, key_file: str | Path | None = None) -> crypto.KeySource | None:
        if key_file:
            return crypto.KeySource(key_file=key_file)
        enc = self.settings.get("backup.encrypt") or {}
        if enc.get("passphrase") or enc.get("key_file"):
            return crypto.KeySource(enc.get("passphrase"), enc.get("key_file"))
        return None

    def _includes(self, include: Include) -> list[str]:
        if include is None:
            include = list(self.settings.get("backup.include") or arc.PARTS)
        return arc.parse_includes(include)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """One backup/restore at a time across threads and processes for this data dir."""
        return self.lock.exclusive()

    # -- create --------------------------------------------------------------------------
    def create(self, target: str | None = None, include: Include = None,
               progress: Progress | None = None) -> dict[str, Any]:
        """Build one archive, store it on each target (or ``target``), verify, prune.

        Returns {ok, name, size, sha256, includes, created_at, duration_s, targets: [...]}.
        ``ok`` is false when any target failed (each target's error is in ``targets``).
        Raises :class:`BackupError` when no archive could be built at all.
        """
        includes = self._includes(include)
        targets = self.specs.targets(target)
        with self.exclusive():
            recover_interrupted_restore(self.settings)
            return self._create_locked(targets, includes, progress)

    def _create_locked(self, targets: list[Target], includes: list[str], progress: Progress | None,
                       record: bool = True) -> dict[str, Any]:
        report = progress or (lambda _f, _m: None)
        started = time.monotonic()
        started_at = datetime.now(timezone.utc)
        keys = self.write_keys()
        staging_root = self.data_dir / STAGING_DIR
        remove_tree_gently(staging_root)  # left by a killed run; we hold the lock
        staging = staging_root / uuid.uuid4().hex[:8]
        staging.mkdir(parents=True)
        try:
            try:
                built = self.builder.build(staging, includes, keys, report)
            except (arc.ArchiveError, crypto.CryptoError, OSError, BackupError) as exc:
                msg = str(exc) if not isinstance(exc, OSError) else f"building the archive failed: {exc}"
                if record:
                    for t in targets:
                        self.store.record("create", "failed", target=t.name, error=msg, includes=includes,
                                          duration_s=time.monotonic() - started, started_at=started_at)
                self._status_cache = None
                raise BackupError(msg) from exc
            pause_point("create-built")
            results = deliver(built, targets, device_id=self.device_id, store=self.store, includes=includes,
                              started_at=started_at, default_keep=self.settings.get("backup.keep"),
                              report=report, record=record)
        finally:
            remove_tree_gently(staging)
            with contextlib.suppress(OSError):
                staging_root.rmdir()
        self._status_cache = None
        ok = all(r["ok"] for r in results)
        report(1.0, "done" if ok else "failed")
        if self.metrics is not None:
            self.metrics.set("backup_last_ok", 1 if ok else 0)
        return {"ok": ok, "name": built.path.name, "size": built.size, "sha256": built.sha256,
                "includes": built.manifest["includes"], "created_at": built.manifest["created_at"],
                "schema_version": built.manifest["schema_version"], "encrypted": keys is not None,
                "duration_s": round(time.monotonic() - started, 3), "targets": results,
                "errors": [r["error"] for r in results if r["error"]]}

    # -- jobs (service callers) -----------------------------------------------------------
    def start(self, target: str | None = None, include: Include = None) -> str:
        """Run :meth:`create` in a thread; returns a job id for :meth:`job`."""
        self._includes(include)
        self.specs.targets(target)
        return self.jobs.start("create", lambda progress: self.create(target, include, progress))

    def start_restore(self, archive: str, include: Include = None, target: str | None = None,
                      accept_security: str | None = None) -> str:
        """Run :meth:`restore` in a thread; returns a job id for :meth:`job`."""
        if include is not None:
            self._includes(include)
        return self.jobs.start("restore", lambda progress: self.restore(archive, include, target=target,
                                                                        progress=progress,
                                                                        accept_security=accept_security),
                               archive=Path(str(archive)).name)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.jobs.job(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job once it has finished (or as it is after ``timeout`` seconds)."""
        return self.jobs.wait(job_id, timeout)

    # -- list / delete / prune / verify / import -------------------------------------------
    def list(self, target: str | None = None) -> list[dict[str, Any]]:
        """Archives on each target (or one), oldest first by name; ``origin`` says whether
        this device wrote it (``own``, what retention counts), it was ``imported``, or the
        log does not know it (``unknown``); ``newest_own`` marks the one a delete by hand keeps
        unless forced. Unreachable targets get an ``error`` entry."""
        items: list[dict[str, Any]] = []
        specs = [self.specs.named(target)] if target else self.specs.enabled()
        for spec in specs:
            t = make_target(spec)
            try:
                t.check()
                backups = t.backups()
                own, imported = set(self.store.own_archives(t.name)), self.store.imported_archives(t.name)
                newest = newest_own(t.name, [b["name"] for b in backups], self.store)
                items.extend(dict(b, origin="own" if b["name"] in own else "imported" if b["name"] in imported
                                  else "unknown", newest_own=b["name"] == newest) for b in backups)
            except (TargetError, OSError) as exc:
                if target:
                    raise BackupError(str(exc)) from exc
                items.append({"target": t.name, "name": None, "error": str(exc)})
            finally:
                t.close()
        return items

    @contextlib.contextmanager
    def _target_holding(self, target: str, name: str) -> Iterator[Target]:
        """The named target, checked and holding archive ``name``; target errors (also those
        raised inside the ``with`` body) become BackupError, and the target is closed."""
        if arc.parse_name(name) is None:
            raise BackupError(f"{name!r} is not a backup archive name", exit_code=2)
        t = make_target(self.specs.named(target))
        try:
            t.check()
            if name not in t.names():
                raise BackupError(f"{t.describe()}: no archive named {name}", exit_code=2)
            yield t
        except TargetError as exc:
            raise BackupError(str(exc)) from exc
        finally:
            t.close()

    @contextlib.contextmanager
    def open_archive(self, target: str, name: str) -> Iterator[tuple[BinaryIO, int]]:
        """Archive ``name`` on ``target`` opened for reading, and its size (for a download)."""
        with self._target_holding(target, name) as t:
            size = t.size(name)
            with t.open_read(name) as fh:
                yield fh, size

    def delete(self, target: str, name: str, force: bool = False) -> None:
        """Remove ``name`` from ``target``; the newest archive the device wrote there itself
        only with ``force`` (:func:`~edge.backup.retention.refuse_newest_own`); not while a
        backup, restore or prune runs (it may be reading this very archive)."""
        with self.exclusive(), self._target_holding(target, name) as t:
            if not force:
                refuse_newest_own(t, name, self.store)
            t.remove(name)
        self.store.record("delete", "ok", target=target, archive=name)

    def prune(self, target: str | None = None, keep: int | None = None) -> dict[str, Names]:
        """Apply retention: ``keep`` (or the target's / backup.keep) newest archives stay."""
        if keep is not None and keep < 1:
            raise BackupError("--keep: must be at least 1", exit_code=2)
        out: dict[str, Names] = {}
        with self.exclusive():
            for t in self.specs.targets(target):
                n = keep or t.keep or self.settings.get("backup.keep")
                try:
                    t.check()
                    out[t.name] = prune_target(t, int(n), self.device_id, self.store)
                except TargetError as exc:
                    raise BackupError(str(exc)) from exc
                finally:
                    t.close()
        return out

    def resolve_archive(self, archive: str | Path, staging: Path, target: str | None = None) -> tuple[Path, str]:
        """A local path for ``archive`` (a path, or a name on ``target``); SMB archives are
        downloaded into ``staging``. Returns (path, label)."""
        if target is None:
            path = Path(archive)
            if path.is_file():
                return path, str(path)
            if "/" in str(archive) or arc.parse_name(str(archive)) is None:
                raise BackupError(f"{archive}: archive not found")
            # A bare archive name (as list() returns it): the first enabled target holding it.
            for spec in self.specs.enabled():
                t = make_target(spec)
                try:
                    t.check()
                    found = str(archive) in t.names()
                except (TargetError, OSError):
                    found = False
                finally:
                    t.close()
                if found:
                    return self.resolve_archive(archive, staging, spec["name"])
            raise BackupError(f"{archive}: archive not found on any backup target")
        name = str(archive)
        with self._target_holding(target, name) as t:
            if isinstance(t, LocalTarget):
                return t.local_path(name), f"{t.name}:{name}"
            staging.mkdir(parents=True, exist_ok=True)
            dest = staging / name
            t.download(name, dest)  # type: ignore[attr-defined]
            return dest, f"{t.name}:{name}"

    def verify(self, archive: str | Path, target: str | None = None, key_file: str | Path | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
        """Check an archive completely without restoring: decryption, manifest, every checksum,
        then every member opened for what it claims (:mod:`edge.backup.verify`)."""
        verify_root = self.data_dir / VERIFY_DIR  # not under STAGING_DIR: create() sweeps that one
        for stale in verify_root.glob("*") if verify_root.is_dir() else []:
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > 6 * 3600:  # left by a killed verify
                    shutil.rmtree(stale, ignore_errors=True)
        staging = verify_root / uuid.uuid4().hex[:8]
        started = time.monotonic()
        try:
            path, label = self.resolve_archive(archive, staging / "download", target)
            verified = arc.verify_archive(path, staging / "check", self.read_keys(key_file), extract=True,
                                          progress=progress, label=label)
            manifest = verified.manifest
            contents = check_members(verified, label)
        except (arc.ArchiveError, crypto.CryptoError) as exc:
            self.store.record("verify", "failed", target=target, archive=Path(str(archive)).name, error=str(exc),
                              duration_s=time.monotonic() - started)
            raise BackupError(str(exc)) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                verify_root.rmdir()
        self.store.record("verify", "ok", target=target, archive=Path(str(archive)).name,
                          duration_s=time.monotonic() - started, includes=manifest["includes"])
        return {"ok": True, "archive": label, "manifest": {k: v for k, v in manifest.items() if k != "members"},
                "members": len(manifest["members"]), "contents": contents}

    def import_archive(self, path: str | Path, key_file: str | Path | None = None) -> dict[str, Any]:
        """Verify an uploaded archive, then store it in the first local target."""
        source = Path(path)
        local = next((s for s in self.specs.enabled() if s["type"] == "local"), None)
        if local is None:
            raise BackupError("importing needs a local target in backup.targets")
        manifest = self.verify(source, key_file=key_file)["manifest"]
        name = source.name
        if arc.parse_name(name) is None:  # renamed on the way: name it after its manifest
            try:
                created = arc.parse_stamp(str(manifest.get("created_at")))
            except ValueError:
                raise BackupError(f"{source}: the manifest's created_at is not a UTC timestamp") from None
            device = str(manifest.get("device_id") or "unknown")
            if not all(c.isalnum() or c in "_-" for c in device):
                device = "unknown"
            name = arc.archive_name(device, created, crypto.is_encrypted(source))
        t = make_target(local)
        try:
            with self.exclusive():
                t.store(source, name, arc.sha256_file(source))
        except TargetError as exc:
            raise BackupError(str(exc)) from exc
        self.store.record("import", "ok", target=t.name, archive=name, size_bytes=source.stat().st_size)
        return {"ok": True, "target": t.name, "name": name}

    # -- restore ---------------------------------------------------------------------------
    def restore(self, archive: str | Path, include: Include = None, target: str | None = None,
                key_file: str | Path | None = None, progress: Progress | None = None,
                pre_backup: bool = True, accept_security: str | None = None) -> dict[str, Any]:
        """Restore ``include`` (default: all the archive holds); see :mod:`edge.backup.restore`.
        Security-relevant settings changes need ``accept_security`` ("all" or their digest)."""
        includes = self._includes(include) if include is not None else None
        result = restore_archive(
            self.settings, archive, includes, lock=self.lock, keys=self.read_keys(key_file),
            resolve=lambda download: self.resolve_archive(archive, download, target), store=self.store,
            pre_backup=self._pre_restore_backup if pre_backup else None, progress=progress,
            accept_security=accept_security)
        self._status_cache = None
        if self.bus is not None and {"db", "faces"} & set(result.get("restored", [])):
            self.bus.publish("enroll", {"reason": "restore"})  # the gallery reloads
        return result

    def preview_restore(self, archive: str, target: str | None = None) -> dict[str, Any]:
        """The security-relevant settings a restore of ``archive`` would change (and their digest)."""
        return preview_settings(self.settings, self.lock, self.read_keys(),
                                lambda download: self.resolve_archive(archive, download, target))

    def recover(self) -> str | None:
        """Finish or discard a restore that was cut short (see edge.backup.restore)."""
        with self.exclusive():
            return recover_interrupted_restore(self.settings)

    def pre_restore_target(self) -> LocalTarget:
        return LocalTarget({"name": "pre-restore", "type": "local",
                            "path": str(self.data_dir / "backups" / "pre-restore"), "keep": PRE_RESTORE_KEEP})

    def _pre_restore_backup(self) -> str | None:
        """A backup of the current state before a restore (the lock is held); its path."""
        parts = []
        if self.db_path.exists():
            parts.append("db")
        if (self.data_dir / "faces").is_dir():
            parts.append("faces")
        if self.settings.source is not None:
            parts.append("settings")
        if not parts:
            return None
        t = self.pre_restore_target()
        result = self._create_locked([t], parts, None, record=False)
        if not result["ok"]:
            raise BackupError(f"the pre-restore backup failed, nothing was changed: {'; '.join(result['errors'])}")
        items = t.backups()  # keep the newest few pre-restore archives
        for item in items[: max(0, len(items) - (t.keep or PRE_RESTORE_KEEP))]:
            t.remove(item["name"])
        return str(t.local_path(result["name"]))

    # -- status ----------------------------------------------------------------------------
    def last_status(self) -> dict[str, Any]:
        """For telemetry and alerts: last success, last result/error, overdue, missing targets."""
        cached = self._status_cache
        if cached and time.monotonic() - cached[0] < 5:
            return dict(cached[1])
        status = backup_status(self.store, self.schedule, self.specs, self.created_at)
        self._status_cache = (time.monotonic(), status)
        return dict(status)
