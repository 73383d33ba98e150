"""Building one archive in a staging directory: a snapshot of the database, the face
images, the settings document, the manifest; verified, then encrypted when keys are set.
See :mod:`edge.backup.archive` for the format."""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import edge
from edge.backup import archive as arc
from edge.backup import crypto
from edge.backup.errors import BackupError
from edge.backup.faults import pause_point
from edge.backup.pacing import remove_file_gently
from edge.config import Settings
from edge.db.archive_db import schema_version_or_zero, snapshot_summary
from edge.db.backup_runs import BackupRunStore
from edge.db.connection import connect, online_backup
from edge.timestamps import iso_utc

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def settings_document(settings: Settings, encrypted: bool) -> bytes | None:
    """The device settings file as it goes into an archive (secrets masked unless the
    archive is encrypted); None when this facepro runs without a settings file."""
    source = settings.source
    if source is None or not Path(source).is_file():
        return None
    raw = json.loads(Path(source).read_text(encoding="utf-8"))
    if not encrypted:
        raw = Settings(raw, None).redacted()  # secrets only travel inside an encrypted archive
    return json.dumps(raw, indent=2).encode()


def face_files(faces_dir: Path) -> list[Path]:
    """Regular files under ``faces_dir`` in a stable order; links are not followed."""
    found: list[Path] = []
    if not faces_dir.is_dir():
        return found
    for root, dirs, files in os.walk(faces_dir):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        for fname in sorted(files):
            path = Path(root) / fname
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


class ArchiveBuilder:
    """Builds archives of one device's data dir; remembers the last creation time so two
    archives never get the same name."""

    def __init__(self, settings: Settings, device_id: str, store: BackupRunStore) -> None:
        self.settings = settings
        self.device_id = device_id
        self.store = store
        self.data_dir = settings.data_dir
        self.db_path = settings.db_path
        self._last_stamp: datetime | None = None

    def next_stamp(self) -> datetime:
        """A creation time (whole seconds, it names the archive) later than the previous
        backup's, also one made by another process (read from the backup log)."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        last = self.store.last("create")
        info = arc.parse_name(last["archive"]) if last and last.get("archive") else None
        if info is not None:
            previous = arc.parse_stamp(info["created_at"])
            if self._last_stamp is None or previous > self._last_stamp:
                self._last_stamp = previous
        if self._last_stamp is not None and now <= self._last_stamp - timedelta(seconds=5):
            log.warning("the clock is behind the previous backup's time (%s); was it reset?",
                        iso_utc(self._last_stamp))
        elif self._last_stamp is not None and now <= self._last_stamp:
            time.sleep((self._last_stamp + timedelta(seconds=1) - datetime.now(timezone.utc)).total_seconds() + 0.01)
            now = self._last_stamp + timedelta(seconds=1)
        self._last_stamp = now
        return now

    def _snapshot(self, snapshot: Path, staging: Path, report: Progress) -> tuple[int, dict[str, int]]:
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
                          progress=lambda rem, total: report(0.4 * (1 - rem / max(total, 1)),
                                                             "snapshot of the database"))
        finally:
            source.close()
        pause_point("create-snapshot")
        return snapshot_summary(snapshot)

    def build(self, staging: Path, includes: list[str], keys: crypto.KeySource | None,
              report: Progress) -> arc.BuiltArchive:
        """Write the archive of ``includes`` into ``staging`` (progress 0 to 0.7)."""
        created = self.next_stamp()
        name = arc.archive_name(self.device_id, created, keys is not None)
        zip_path = staging / (name[: -len(".enc")] if keys else name)
        snapshot = staging / "facepro.db"
        actual: list[str] = []
        if "db" in includes:
            schema_version, counts = self._snapshot(snapshot, staging, report)
            actual.append("db")
        else:
            schema_version, counts = schema_version_or_zero(self.db_path), {}
        settings_doc = settings_document(self.settings, keys is not None) if "settings" in includes else None
        if settings_doc is not None:
            actual.append("settings")
        faces_dir = self.data_dir / "faces"
        faces: list[Path] = []
        if "faces" in includes:
            actual.append("faces")
            faces = face_files(faces_dir)
        if not actual:
            raise BackupError("nothing to back up: settings were asked for, but this facepro runs without a "
                              "device settings file (--config)")
        header = {
            "format": arc.FORMAT, "format_version": arc.FORMAT_VERSION, "app_version": edge.__version__,
            "schema_version": schema_version, "device_id": self.device_id,
            "device_name": self.settings.get("device.name"), "created_at": iso_utc(created),
            "includes": actual, "counts": counts, "encrypted": keys is not None,
            "settings_secrets": ("included" if keys is not None else "redacted") if "settings" in actual else None,
        }
        total = (snapshot.stat().st_size if "db" in actual else 0) + sum(p.stat().st_size for p in faces) + 1
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            report(0.4 + 0.2 * done / total, "writing the archive")

        writer = arc.ArchiveWriter(zip_path, header)
        try:
            if "db" in actual:
                writer.add_file(arc.DB_MEMBER, snapshot, compress=True, progress=tick)
                remove_file_gently(snapshot)
            for path in faces:
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
            remove_file_gently(zip_path)
        return arc.BuiltArchive(final, final.stat().st_size, arc.sha256_file(final), manifest)

