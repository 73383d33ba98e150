"""Doctor checks of the device itself: settings, device id, clock, disk, database."""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import sqlite3
import stat

from edge.config import ConfigError, Settings, load_settings
from edge.doctor.check import FAIL, INFO, PASS, WARN, Check

log = logging.getLogger(__name__)

MIN_YEAR = 2020


def check_settings(config: str | None, env: dict[str, str] | None = None) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(config, env=env)
    except ConfigError as exc:
        return Check("settings", FAIL, str(exc),
                     "correct the file and key named here; `facepro config check` validates the file"), None
    source = settings.source
    if source is None:
        return Check("settings", WARN, "no device settings file: running on the shipped defaults",
                     "pass --config /etc/facepro/settings.json or set FACEPRO_CONFIG"), settings
    mode = stat.S_IMODE(source.stat().st_mode)
    if mode & 0o004:
        return Check("settings", WARN, f"{source}: readable by every user (mode {mode:04o}) and may hold passwords",
                     f"chmod 0640 {source}; chown root:facepro {source}"), settings
    return Check("settings", PASS, f"{source} is valid"), settings


def check_device_id(settings: Settings) -> Check:
    from edge.device_id import ID_FILE, peek_device_id

    configured = settings["device.id"]
    device_id = peek_device_id(configured, settings.data_dir)
    if configured:
        if device_id is None:
            return Check("device id", FAIL, f"device.id {configured!r} is not a valid id",
                         "use letters, digits, '_' and '-' only (max 64), or null to derive it")
        return Check("device id", PASS, f"{device_id} (device.id in settings)")
    if device_id is None:
        return Check("device id", INFO, f"not created yet: the first start writes {settings.data_dir / ID_FILE}")
    return Check("device id", PASS, f"{device_id} (MQTT username, topics and Home Assistant ids use it)")


def check_clock(now: dt.datetime | None = None) -> Check:
    now = now or dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if now.year < MIN_YEAR:
        return Check("clock", FAIL, f"system time is {stamp}: the device has no RTC time and no NTP",
                     "enable time sync (timedatectl set-ntp true; allow UDP 123 to an NTP server) or set the "
                     "time (timedatectl set-time); events, backups and TLS need a correct clock")
    return Check("clock", PASS, f"system time {stamp}")


def check_disk(settings: Settings) -> Check:
    data_dir = settings.data_dir
    probe_dir = data_dir
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    usage = shutil.disk_usage(probe_dir)
    free_mb = usage.free / 2**20
    min_mb = float(settings["events.min_free_mb"])
    detail = f"{data_dir}: {free_mb:,.0f} MB free of {usage.total / 2**20:,.0f} MB (minimum {min_mb:,.0f} MB)"
    if not data_dir.exists():
        return Check("disk", WARN, f"{detail}; the data dir does not exist yet",
                     f"it is created on first start (systemctl start facepro), or: install -d -o facepro {data_dir}")
    if not os.access(data_dir, os.W_OK):
        return Check("disk", FAIL, f"{data_dir} is not writable by this user",
                     f"chown -R facepro:facepro {data_dir}")
    if free_mb < min_mb:
        return Check("disk", FAIL, detail, "free space on the data disk (old events, snapshots, local backups) "
                     "or lower events.retention_days")
    if free_mb < 2 * min_mb:
        return Check("disk", WARN, detail, "free space soon: lower events.retention_days or move backups off the device")
    return Check("disk", PASS, detail)


def check_database(settings: Settings) -> Check:
    from edge.db.connection import connect, integrity_check
    from edge.db.migrator import MigrationError, Migrator

    path = settings.db_path
    if not path.exists():
        return Check("database", WARN, f"{path} does not exist yet",
                     "it is created with the schema on the service's first start (systemctl start facepro) "
                     "or by `facepro migrate up`")
    try:
        conn = connect(path, readonly=True, busy_timeout_ms=settings["database.busy_timeout_ms"])
    except sqlite3.Error as exc:
        return Check("database", FAIL, f"{path}: cannot open: {exc}",
                     f"check the file's owner (chown facepro {path}) or restore a backup")
    try:
        integrity = integrity_check(conn)
        if integrity != ["ok"]:
            return Check("database", FAIL, f"{path}: integrity_check: {'; '.join(integrity[:3])}",
                         "stop the service and restore the latest backup (facepro backup restore ARCHIVE)")
        migrator = Migrator(conn)
        status = migrator.status()
    except (sqlite3.Error, MigrationError) as exc:
        return Check("database", FAIL, f"{path}: {exc}",
                     "stop the service and restore the latest backup (facepro backup restore ARCHIVE)")
    finally:
        conn.close()
    version, latest = status["current_version"], status["latest_version"]
    if status["problems"]:
        return Check("database", FAIL, f"{path}: {status['problems'][0]}",
                     "see `facepro migrate status`; restore the migration files or a backup")
    if status["pending"]:
        return Check("database", WARN, f"{path}: schema version {version:03d}, {len(status['pending'])} "
                     f"migration(s) pending (latest {latest:03d})",
                     "restart the service (it migrates at start) or run `facepro migrate up`")
    return Check("database", PASS, f"{path}: schema version {version:03d} (current), integrity ok")

