"""Migrating the device database: the migrator for a device's settings, and the boot step.

Takes anything shaped like :class:`edge.config.Settings` (``db_path``, ``data_dir`` and
dotted keys), so this layer does not import the settings module.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from edge.db.migrator import MigrationError, Migrator

log = logging.getLogger(__name__)


class DatabaseSettings(Protocol):
    @property
    def db_path(self) -> Path: ...

    @property
    def data_dir(self) -> Path: ...

    def __getitem__(self, dotted: str) -> Any: ...


def open_migrator(settings: DatabaseSettings) -> Migrator:
    """The device database's migrator, snapshots going to ``<data_dir>/backups/pre-migrate``."""
    return Migrator(
        settings.db_path,
        snapshot_dir=settings.data_dir / "backups" / "pre-migrate",
        keep_snapshots=settings["database.pre_migrate_keep"],
        busy_timeout_ms=settings["database.busy_timeout_ms"],
    )


def migrate_database(settings: DatabaseSettings) -> int:
    """Apply pending migrations (with a pre-migrate snapshot). Returns the schema version."""
    try:
        with open_migrator(settings) as migrator:
            applied = migrator.migrate()
            version = migrator.current_version()
    except MigrationError as exc:
        log.error("migration failed: %s", exc)
        raise
    if applied:
        log.info("database %s migrated to version %03d (applied %s)", settings.db_path, version,
                 ", ".join(f"{v:03d}" for v in applied))
    else:
        log.info("database %s is at version %03d, no migration pending", settings.db_path, version)
    return version
