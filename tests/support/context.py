"""A ServiceContext over real settings, built the way the service boots: database migrated first."""
from __future__ import annotations

from edge.config import Settings
from edge.context import ServiceContext
from edge.db.migrate import migrate_database
from edge.pipeline.service import Pipeline
from edge.telemetry.component import Telemetry
from tests.conftest import DEVICE


def make_ctx(settings: Settings, *, device_id: str = DEVICE) -> ServiceContext:
    migrate_database(settings)
    return ServiceContext(settings=settings, device_id=device_id)


def pipeline_with_telemetry(settings: Settings, *, persist: bool) -> tuple[ServiceContext, Pipeline, Telemetry]:
    """A context with its pipeline and telemetry wired in, as edge.service does (not started)."""
    ctx = make_ctx(settings, device_id="test-device")
    ctx.pipeline = pipeline = Pipeline(ctx)
    ctx.telemetry = telemetry = Telemetry(ctx, persist=persist)
    return ctx, pipeline, telemetry
