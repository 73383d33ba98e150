"""BackupManager: create, list, verify, prune, delete, import and restore backups.

One operation at a time per data directory (a file lock, so the CLI and the running
service never interleave). Every attempt is recorded in ``backup_runs`` and published on
the bus topic ``backup``. See README "Backups" for the behaviour as a user sees it.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import edge
from edge.backup import archive as arc
from edge.backup import crypto
from edge.backup.faults import pause_point
from edge.backup.errors import BackupError
from edge.schedule import parse_schedule
from edge.backup.targets import LocalTarget, Target, TargetError, for_device, make_target
from edge.config import Settings
from edge.db.backup_runs import BackupRunStore
from edge.db.connection import connect, online_backup

log = logging.getLogger(__name__)

STAGING_DIR = ".backup-staging"
VERIFY_DIR = ".backup-verify"
LOCK_FILE = ".backup.lock"
PRE_RESTORE_KEEP = 3
Progress = Callable[[float, str], None]


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def _db_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)


class BackupManager:
    def __init__(self, settings: Settings, device_id: str, bus: Any = None, metrics: Any = None) -> None:
        self.settings = settings
        self.device_id = device_id
        self.bus = bus
        self.metrics = metrics
        self.data_dir = settings.data_dir
        self.db_path = settings.db_path
        self.store = BackupRunStore(self.db_path, settings.get("database.busy_timeout_ms", 5000))
        self.schedule = parse_schedule(settings.get("backup.schedule"))
        self.created_at = datetime.now(timezone.utc)
        self._thread_lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._last_stamp: datetime | None = None
        self._status_cache: tuple[float, dict[str, Any]] | None = None

    # -- settings ------------------------------------------------------------------------
    @property
    def target_specs(self) -> list[dict[str, Any]]:
        return [for_device(spec, self.device_id) for spec in self.settings.get("backup.targets") or []]

    def _spec(self, name: str) -> dict[str, Any]:
        for spec in self.target_specs:
            if spec["name"] == name:
                return spec
        known = ", ".join(s["name"] for s in self.target_specs) or "none configured"
        raise BackupError(f"no backup target named {name!r} (backup.targets: {known})", exit_code=2)

    def _targets(self, name: str | None) -> list[Target]:
        if name is not None:
            return [make_target(self._spec(name))]
        specs = [s for s in self.target_specs if s.get("enabled", True)]
        if not specs:
            raise BackupError("no backup targets configured (add one to backup.targets)", exit_code=2)
        return [make_target(s) for s in specs]

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

    def _includes(self, include: list[str] | str | None) -> list[str]:
        if include is None:
            include = list(self.settings.get("backup.include") or arc.PARTS)
        if isinstance(include, str):
            include = [p.strip() for p in include.split(",") if p.strip()]
        bad = [p for p in include if p not in arc.PARTS]
        if bad or not include:
            raise BackupError(f"--include: {bad[0] if bad else '(empty)'!r} is not one of db, faces, settings", exit_code=2)
        return [p for p in arc.PARTS if p in include]

    # -- locking -------------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One backup/restore at a time across threads and processes for this data dir."""
        if not self._thread_lock.acquire(blocking=False):
            raise BackupError("another backup or restore is already running in this service")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise BackupError(f"another backup or restore is running on {self.data_dir} "
                                      "(the service or another facepro command)") from None
                yield
            finally:
                os.close(fd)
        finally:
            self._thread_lock.release()

    # -- create --------------------------------------------------------------------------
    def create(self, target: str | None = None, include: list[str] | str | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
        """Build one archive, store it on each target (or ``target``), verify, prune.

        Returns {ok, name, size, sha256, includes, created_at, duration_s, targets: [...]}.
        ``ok`` is false when any target failed (each target's error is in ``targets``).
        Raises :class:`BackupError` when no archive could be built at all.
        """
        includes = self._includes(include)
        targets = self._targets(target)
        with self.exclusive():
            from edge.backup.restore import recover_interrupted_restore

            recover_interrupted_restore(self.settings)
            return self._create_locked(targets, includes, progress)

    def _next_stamp(self) -> datetime:
        """A creation time (whole seconds, it names the archive) later than the previous
        backup's, also one made by another process (read from the backup log)."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        last = self.store.last("create")
        info = arc.parse_name(last["archive"]) if last and last.get("archive") else None
        if info is not None:
            previous = datetime.strptime(info["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            if self._last_stamp is None or previous > self._last_stamp:
                self._last_stamp = previous
        if self._last_stamp is not None and now <= self._last_stamp - timedelta(seconds=5):
            log.warning("the clock is behind the previous backup's time (%s); was it reset?", _iso(self._last_stamp))
        elif self._last_stamp is not None and now <= self._last_stamp:
            time.sleep((self._last_stamp + timedelta(seconds=1) - datetime.now(timezone.utc)).total_seconds() + 0.01)
            now = self._last_stamp + timedelta(seconds=1)
        self._last_stamp = now
        return now

    def _create_locked(self, targets: list[Target], includes: list[str], progress: Progress | None,
                       record: bool = True) -> dict[str, Any]:
        report = progress or (lambda _f, _m: None)
        started = time.monotonic()
        started_at = datetime.now(timezone.utc)
        keys = self.write_keys()
        staging_root = self.data_dir / STAGING_DIR
        arc.remove_tree_gently(staging_root)  # left by a killed run; we hold the lock
        staging = staging_root / uuid.uuid4().hex[:8]
        staging.mkdir(parents=True)
        results: list[dict[str, Any]] = []
        try:
            try:
                built = self._build(staging, includes, keys, report)
            except (arc.ArchiveError, crypto.CryptoError, OSError, BackupError) as exc:
                msg = str(exc) if not isinstance(exc, OSError) else f"building the archive failed: {exc}"
                if record:
                    for t in targets:
                        self.store.record("create", "failed", target=t.name, error=msg, includes=includes,
                                          duration_s=time.monotonic() - started, started_at=started_at)
                self._status_cache = None
                raise BackupError(msg) from exc
            pause_point("create-built")
            for index, t in enumerate(targets):
                t_start = time.monotonic()
                base = 0.7 + 0.3 * index / len(targets)
                done = 0

                def tick(n: int, base: float = base) -> None:
                    nonlocal done
                    done += n
                    report(base + 0.3 / len(targets) * min(1.0, done / max(built.size, 1)), f"writing to {t.name}")

                entry: dict[str, Any] = {"target": t.name, "name": built.path.name, "ok": False, "error": None}
                try:
                    try:
                        t.clean_partials(self.device_id)
                    except (TargetError, OSError):
                        pass
                    t.store(built.path, built.path.name, built.sha256, progress=tick)
                    entry["ok"] = True
                except (TargetError, OSError) as exc:
                    entry["error"] = str(exc) if isinstance(exc, TargetError) else f"{t.describe()}: {exc}"
                    log.error("backup to %s failed: %s", t.name, entry["error"])
                duration = time.monotonic() - t_start
                if record:
                    self.store.record("create", "ok" if entry["ok"] else "failed", target=t.name,
                                      archive=built.path.name, size_bytes=built.size, sha256=built.sha256,
                                      duration_s=duration, error=entry["error"], includes=includes,
                                      started_at=started_at)
                if entry["ok"]:
                    log.info("backup %s written to %s and verified (%d bytes)", built.path.name, t.name, built.size)
                    keep = t.keep or self.settings.get("backup.keep")
                    if keep:
                        try:
                            entry["pruned"] = self._prune_target(t, int(keep), record=record)
                        except (TargetError, OSError) as exc:
                            log.warning("pruning %s failed: %s", t.name, exc)
                t.close()
                results.append(entry)
        finally:
            arc.remove_tree_gently(staging)
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

    def _settings_document(self, encrypted: bool) -> bytes | None:
        source = self.settings.source
        if source is None or not Path(source).is_file():
            return None
        raw = json.loads(Path(source).read_text(encoding="utf-8"))
        if not encrypted:
            raw = Settings(raw, None).redacted()  # secrets only travel inside an encrypted archive
        return json.dumps(raw, indent=2).encode()

    def _build(self, staging: Path, includes: list[str], keys: crypto.KeySource | None,
               report: Progress) -> arc.BuiltArchive:
        created = self._next_stamp()
        name = arc.archive_name(self.device_id, created, keys is not None)
        zip_path = staging / (name[: -len(".enc")] if keys else name)
        schema_version = 0
        counts: dict[str, int] = {}
        snapshot = staging / "facepro.db"
        actual: list[str] = []
        if "db" in includes:
            if not self.db_path.exists():
                raise BackupError(f"{self.db_path}: database not found")
            free = shutil.disk_usage(staging).free
            need = self.db_path.stat().st_size * 2 + (16 << 20)
            if free < need:
                raise BackupError(f"{self.data_dir}: not enough free space for the backup staging area "
                                  f"({free} bytes free, about {need} needed)")
            report(0.0, "snapshot of the database")
            source = connect(self.db_path, busy_timeout_ms=self.settings.get("database.busy_timeout_ms", 5000))
            try:
                online_backup(source, snapshot, pages=256,
                              progress=lambda rem, total: report(0.4 * (1 - rem / max(total, 1)), "snapshot of the database"))
            finally:
                source.close()
            pause_point("create-snapshot")
            snap = connect(snapshot, readonly=True)
            try:
                row = snap.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
                schema_version = int(row[0] or 0)
                for table in ("users", "face_encodings", "events"):
                    with contextlib.suppress(Exception):
                        counts[table] = int(snap.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            finally:
                snap.close()
            actual.append("db")
        else:
            with contextlib.suppress(Exception):
                c = connect(self.db_path, readonly=True)
                try:
                    schema_version = int(c.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0)
                finally:
                    c.close()
        settings_doc = self._settings_document(keys is not None) if "settings" in includes else None
        if "settings" in includes and settings_doc is not None:
            actual.append("settings")
        faces_dir = self.data_dir / "faces"
        face_files = []
        if "faces" in includes:
            actual.append("faces")
            if faces_dir.is_dir():
                for root, dirs, files in os.walk(faces_dir):
                    dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
                    for fname in sorted(files):
                        path = Path(root) / fname
                        if path.is_file() and not path.is_symlink():
                            face_files.append(path)
        if not actual:
            raise BackupError("nothing to back up: settings were asked for, but this facepro runs without a "
                              "device settings file (--config)")
        header = {
            "format": arc.FORMAT, "format_version": arc.FORMAT_VERSION, "app_version": edge.__version__,
            "schema_version": schema_version, "device_id": self.device_id,
            "device_name": self.settings.get("device.name"), "created_at": _iso(created),
            "includes": actual, "counts": counts, "encrypted": keys is not None,
            "settings_secrets": ("included" if keys is not None else "redacted") if "settings" in actual else None,
        }
        total = (snapshot.stat().st_size if "db" in actual else 0) + sum(p.stat().st_size for p in face_files) + 1
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            report(0.4 + 0.2 * done / total, "writing the archive")

        writer = arc.ArchiveWriter(zip_path, header)
        try:
            if "db" in actual:
                writer.add_file(arc.DB_MEMBER, snapshot, compress=True, progress=tick)
                arc.remove_file_gently(snapshot)
            for path in face_files:
                writer.add_file(arc.FACES_PREFIX + path.relative_to(faces_dir).as_posix(), path,
                                compress=False, progress=tick)
            if settings_doc is not None:
                writer.add_bytes(arc.SETTINGS_MEMBER, settings_doc)
            manifest = writer.close()
        except BaseException:
            writer.abort()
            raise
        with open(zip_path, "rb+") as fh:
            os.fsync(fh.fileno())
        report(0.6, "verifying the archive")
        arc.verify_archive(zip_path, staging / "check", None, extract=False)
        final = zip_path
        if keys is not None:
            report(0.65, "encrypting")
            final = staging / name
            with open(zip_path, "rb") as src, open(final, "wb") as dst:
                crypto.encrypt_stream(src, dst, keys, sync_every=8)
                dst.flush()
                os.fsync(dst.fileno())
            arc.remove_file_gently(zip_path)
        return arc.BuiltArchive(final, final.stat().st_size, arc.sha256_file(final), manifest)

    # -- jobs (service callers) -----------------------------------------------------------
    def start(self, target: str | None = None, include: list[str] | str | None = None) -> str:
        """Run :meth:`create` in a thread; returns a job id for :meth:`job`."""
        self._includes(include)
        self._targets(target)
        return self._start_job("create", lambda progress: self.create(target, include, progress))

    def start_restore(self, archive: str, include: list[str] | str | None = None) -> str:
        return self._start_job("restore", lambda progress: self.restore(archive, include, progress=progress))

    def _start_job(self, kind: str, work: Callable[[Progress], dict[str, Any]]) -> str:
        job_id = uuid.uuid4().hex[:12]
        job = {"id": job_id, "kind": kind, "state": "running", "progress": 0.0, "message": "starting",
               "result": None, "started_at": _iso(datetime.now(timezone.utc))}
        self._jobs[job_id] = job
        last_pub = [0.0]

        def progress(fraction: float, message: str) -> None:
            job["progress"] = round(max(job["progress"], min(1.0, fraction)), 3)
            job["message"] = message
            now = time.monotonic()
            if now - last_pub[0] >= 0.5:
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
                if not isinstance(exc, (BackupError, arc.ArchiveError, crypto.CryptoError, TargetError)):
                    log.exception("backup job %s failed", job_id)
            job["progress"] = 1.0 if job["state"] == "ok" else job["progress"]
            job["finished_at"] = _iso(datetime.now(timezone.utc))
            self._publish(job)

        self._publish(job)
        threading.Thread(target=run, name=f"backup-{kind}-{job_id}", daemon=True).start()
        while len(self._jobs) > 50:  # forget the oldest finished jobs
            oldest = next((k for k, j in self._jobs.items() if j["state"] != "running"), None)
            if oldest is None:
                break
            del self._jobs[oldest]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise BackupError(f"no backup job {job_id!r}")
        return dict(job)

    def _publish(self, job: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish("backup", {"job": job["id"], "kind": job["kind"], "state": job["state"],
                                        "progress": job["progress"], "message": job["message"],
                                        "result": job["result"]})

    # -- list / delete / prune / verify / import -------------------------------------------
    def list(self, target: str | None = None) -> list[dict[str, Any]]:
        """Archives on each target (or one), oldest first; unreachable targets are skipped
        with an ``error`` entry."""
        items: list[dict[str, Any]] = []
        specs = [self._spec(target)] if target else [s for s in self.target_specs if s.get("enabled", True)]
        for spec in specs:
            t = make_target(spec)
            try:
                t.check()
                items.extend(t.backups())
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
            raise BackupError(f"{name!r} is not a backup archive name")
        t = make_target(self._spec(target))
        try:
            t.check()
            if name not in t.names():
                raise BackupError(f"{t.describe()}: no archive named {name}")
            yield t
        except TargetError as exc:
            raise BackupError(str(exc)) from exc
        finally:
            t.close()

    def delete(self, target: str, name: str) -> None:
        with self._target_holding(target, name) as t:
            t.remove(name)
        self.store.record("delete", "ok", target=target, archive=name)

    def prune(self, target: str | None = None, keep: int | None = None) -> dict[str, list[str]]:
        """Apply retention: ``keep`` (or the target's / backup.keep) newest archives stay."""
        if keep is not None and keep < 1:
            raise BackupError("--keep: must be at least 1", exit_code=2)
        out: dict[str, list[str]] = {}
        with self.exclusive():
            for t in self._targets(target):
                n = keep or t.keep or self.settings.get("backup.keep")
                try:
                    t.check()
                    out[t.name] = self._prune_target(t, int(n))
                except TargetError as exc:
                    raise BackupError(str(exc)) from exc
                finally:
                    t.close()
        return out

    def _prune_target(self, t: Target, keep: int, record: bool = True) -> list[str]:
        """Delete this device's archives beyond the newest ``keep``, but never the last good one.

        Good = recorded in backup_runs as written-and-verified (or verified/imported later).
        With no known good archive on the target nothing is deleted.
        """
        mine = [b for b in t.backups() if b["device"] == self.device_id]
        good = self.store.good_archives(t.name)
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
            self.store.record("prune", "ok", target=t.name, archive=",".join(removed))
        return removed

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
            for spec in self.target_specs:
                if not spec.get("enabled", True):
                    continue
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
        """Check an archive completely (decryption, manifest, every checksum) without restoring."""
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
                "members": len(manifest["members"])}

    def import_archive(self, path: str | Path, key_file: str | Path | None = None) -> dict[str, Any]:
        """Verify an uploaded archive, then store it in the first local target."""
        source = Path(path)
        local = next((s for s in self.target_specs if s["type"] == "local" and s.get("enabled", True)), None)
        if local is None:
            raise BackupError("importing needs a local target in backup.targets")
        manifest = self.verify(source, key_file=key_file)["manifest"]
        name = source.name
        if arc.parse_name(name) is None:  # renamed on the way: name it after its manifest
            try:
                created = datetime.strptime(str(manifest.get("created_at")), "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=timezone.utc)
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
    def restore(self, archive: str | Path, include: list[str] | str | None = None, target: str | None = None,
                key_file: str | Path | None = None, progress: Progress | None = None,
                pre_backup: bool = True) -> dict[str, Any]:
        from edge.backup.restore import restore_archive

        includes = self._includes(include) if include is not None else None
        result = restore_archive(self, archive, includes, target=target, key_file=key_file, progress=progress,
                                 pre_backup=pre_backup)
        self._status_cache = None
        if self.bus is not None and {"db", "faces"} & set(result.get("restored", [])):
            self.bus.publish("enroll", {"reason": "restore"})  # the gallery reloads
        return result

    def recover(self) -> str | None:
        """Finish or discard a restore that was cut short (see edge.backup.restore)."""
        from edge.backup.restore import recover_interrupted_restore

        with self.exclusive():
            return recover_interrupted_restore(self.settings)

    def pre_restore_target(self) -> LocalTarget:
        return LocalTarget({"name": "pre-restore", "type": "local",
                            "path": str(self.data_dir / "backups" / "pre-restore"), "keep": PRE_RESTORE_KEEP})

    # -- status ----------------------------------------------------------------------------
    def last_status(self) -> dict[str, Any]:
        """For telemetry and alerts: last success, last result/error, overdue, missing targets."""
        cached = self._status_cache
        if cached and time.monotonic() - cached[0] < 5:
            return dict(cached[1])
        last = self.store.last("create")
        last_ok = self.store.last("create", "ok")
        last_success = _db_time(last_ok["finished_at"]) if last_ok else None
        last_attempt = _db_time(last["finished_at"]) if last else None
        status: dict[str, Any] = {
            "last_success_at": _iso(last_success),
            "last_result": last["result"] if last else None,
            "last_error": last["error"] if last and last["result"] == "failed" else None,
            "last_attempt_at": _iso(last_attempt),
            "last_target": last["target"] if last else None,
            "schedule": self.schedule.text if self.schedule else None,
            "next_due_at": None,
            "overdue": False,
            "targets_missing": [],
            "targets": [s["name"] for s in self.target_specs if s.get("enabled", True)],
        }
        if self.schedule is not None and status["targets"]:
            now_local = datetime.now()
            last_local = last_success.astimezone().replace(tzinfo=None) if last_success else None
            due = self.schedule.next_due(last_local, now_local)
            status["next_due_at"] = _iso(due.astimezone(timezone.utc))
            grace = max(timedelta(hours=1), self.schedule.period / 2)
            reference = last_success or self.created_at
            status["overdue"] = datetime.now(timezone.utc) - reference > self.schedule.period + grace
        for spec in self.target_specs:
            if spec.get("enabled", True) and spec["type"] in ("usb", "mounted"):
                try:
                    make_target(spec).check()
                except TargetError as exc:
                    status["targets_missing"].append({"name": spec["name"], "detail": str(exc)})
        self._status_cache = (time.monotonic(), status)
        return dict(status)
