"""What the service's parts share: settings, the database path, the bus, metrics, each other.

Each part gets this object at construction instead of reaching for globals. The parts that
others query sit in typed slots, each a small :class:`typing.Protocol` naming only what the
others call. ``edge.service.build_components`` fills the slots as it builds the parts; a
part that is not running is ``None`` and readers show it as unavailable. Ask a part through
:func:`answer` or :func:`ask`: an absent part and a part that fails while answering both
read as unavailable, and the failure is logged.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

from edge.bus import EventBus
from edge.config import Settings
from edge.metrics import Metrics

log = logging.getLogger(__name__)

P = TypeVar("P")
T = TypeVar("T")
D = TypeVar("D")


class PipelinePart(Protocol):
    """The camera pipeline (``edge.pipeline.service.Pipeline``)."""

    def cameras_status(self) -> list[dict[str, Any]]: ...

    def models_info(self) -> dict[str, Any]: ...

    def healthy(self) -> tuple[bool, list[str]]: ...

    def reload_gallery(self) -> None:
        """Ask for the enrolled faces to be read again (the inference thread does it)."""

    def set_recognition(self, camera: str, enabled: bool) -> bool:
        """Pause/resume recognition on a camera; returns True while it runs. KeyError: no such camera."""

    def latest_frame(self, camera: str) -> tuple[Any, float] | None:
        """A copy of the camera's newest frame and its capture time (KeyError: no such camera)."""


class TelemetryPart(Protocol):
    """The telemetry sampler (``edge.telemetry.component.Telemetry``)."""

    def snapshot(self) -> dict[str, Any]: ...

    def history(self, window_s: float = 600) -> dict[str, list[list[float]]]: ...


class AlertsPart(Protocol):
    """The alert rules (``edge.telemetry.alerts.AlertManager``)."""

    def active(self) -> list[dict[str, Any]]: ...


class BackupsPart(Protocol):
    """The backup manager (``edge.backup.manager.BackupManager``)."""

    def start(self, target: str | None = None, include: list[str] | str | None = None) -> str: ...

    def last_status(self) -> dict[str, Any]: ...


class MqttPart(Protocol):
    """The MQTT publisher (``edge.mqtt.publisher.MqttPublisher``)."""

    def status(self) -> dict[str, Any]: ...


class StoragePart(Protocol):
    """Whether the data disk is full (``edge.telemetry.storage.DiskFullState``)."""

    @property
    def full(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...


class WebPart(Protocol):
    """The web server (``edge.web.server.WebServer``) while it listens."""

    @property
    def url(self) -> str: ...


@dataclass
class ServiceContext:
    settings: Settings
    device_id: str
    bus: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = field(default_factory=time.time)
    # Filled in by edge/service.py as it builds the parts; web by the server while it listens.
    pipeline: PipelinePart | None = None
    telemetry: TelemetryPart | None = None
    alerts: AlertsPart | None = None
    backups: BackupsPart | None = None
    mqtt: MqttPart | None = None
    web: WebPart | None = None
    storage: StoragePart | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def db_path(self) -> Path:
        return self.settings.db_path


@dataclass(frozen=True)
class Answer(Generic[T]):
    """One part's answer: ``available`` is False when the part is absent or failed (``error``)."""

    available: bool
    value: T | None = None
    error: str | None = None


def answer(part: P | None, question: Callable[[P], T], what: str = "") -> Answer[T]:
    """``question(part)`` as an :class:`Answer`; a failure is logged, never raised."""
    if part is None:
        return Answer(False)
    try:
        return Answer(True, question(part))
    except Exception as exc:  # a broken part must not take its reader down
        log.warning("%s failed to answer: %s", what or type(part).__name__, exc, exc_info=True)
        return Answer(False, error=f"{type(exc).__name__}: {exc}")


def ask(part: P | None, question: Callable[[P], T], default: D, what: str = "") -> T | D:
    """``question(part)``, or ``default`` when the part is absent or fails (logged)."""
    reply = answer(part, question, what)
    return cast(T, reply.value) if reply.available else default
