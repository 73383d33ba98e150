"""A ServiceContext over real settings, built the way the service boots: database migrated first."""
from __future__ import annotations

from edge.config import Settings
from edge.context import ServiceContext
from edge.db.migrate import migrate_database
from tests.conftest import DEVICE


def make_ctx(settings: Settings, *, device_id: str = DEVICE) -> ServiceContext:
    migrate_database(settings)
    return ServiceContext(settings=settings, device_id=device_id)
