"""What the service's parts share: settings, the database path, the bus, metrics.

Each part gets this object at construction instead of reaching for globals. Parts that
others may query (cameras, backups, alerts, MQTT state) register themselves here as
they start; a part that has not started is ``None`` and readers show it as unavailable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.bus import EventBus
from edge.config import Settings
from edge.metrics import Metrics


@dataclass
class ServiceContext:
    settings: Settings
    device_id: str
    bus: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = field(default_factory=time.time)
    # Filled in by the parts as they start (see edge/service.py).
    pipeline: Any = None
    telemetry: Any = None
    alerts: Any = None
    backups: Any = None
    mqtt: Any = None
    web: Any = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def db_path(self) -> Path:
        return self.settings.db_path
