"""Boot order and lifecycle of ``facepro run``.

1. settings (already loaded by the CLI) and logging;
2. data directory and device id;
3. migrations, before anything else touches the database; a failure stops the boot;
4. the parts (pipeline, telemetry, MQTT, backups, web) in dependency order;
5. READY to systemd, then the main loop pings the watchdog until SIGTERM/SIGINT;
6. the parts stop in reverse order.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Protocol

from edge import sdnotify
from edge.config import Settings
from edge.context import ServiceContext
from edge.db.migrate import migrate_database
from edge.device_id import resolve_device_id

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


def build_components(ctx: ServiceContext) -> list[Component]:
    """The service's parts, in start order, each assigned to its slot in ``ctx`` here.

    The web server fills ``ctx.web`` itself, while it listens.
    """
    from edge.backup.manager import BackupManager
    from edge.backup.scheduler import BackupScheduler
    from edge.pipeline.service import Pipeline
    from edge.telemetry.component import Telemetry
    from edge.telemetry.storage import DiskFullState

    components: list[Component] = []
    storage = DiskFullState(ctx.data_dir, bus=ctx.bus)  # the event writer reports, the others read
    ctx.storage = storage
    pipeline = Pipeline(ctx)  # first: the others read ctx.pipeline
    ctx.pipeline = pipeline
    components.append(pipeline)
    telemetry = Telemetry(ctx)
    ctx.telemetry, ctx.alerts = telemetry, telemetry.alerts
    components.append(telemetry)
    backups = BackupManager(ctx.settings, ctx.device_id, bus=ctx.bus, metrics=ctx.metrics)
    ctx.backups = backups
    components.append(BackupScheduler(backups))
    # MQTT after pipeline/telemetry/backups (it reads them from ctx), before web.
    if ctx.settings["mqtt.enabled"]:
        from edge.mqtt.publisher import MqttPublisher

        mqtt = MqttPublisher(ctx)
        ctx.mqtt = mqtt
        components.append(mqtt)
    # Web last: it only reads the other parts.
    if ctx.settings["web.enabled"]:
        from edge.web.server import WebServer

        components.append(WebServer(ctx))
    return components


def components_healthy(components: list[Component]) -> tuple[bool, list[str]]:
    """Ask each part that has ``healthy()`` (returning a bool or ``(bool, reasons)``)."""
    problems: list[str] = []
    for component in components:
        check = getattr(component, "healthy", None)
        if check is None:
            continue
        try:
            result = check()
        except Exception as exc:  # a broken health check is itself unhealthy
            problems.append(f"{component.name}: health check failed: {exc}")
            continue
        ok, reasons = result if isinstance(result, tuple) else (bool(result), [])
        if not ok:
            problems.extend(f"{component.name}: {reason}" for reason in reasons or ["unhealthy"])
    return not problems, problems


def stop_order(started: list[Component]) -> list[Component]:
    """Producers first (the pipeline: its last events reach the log, the database and the
    MQTT outbox's final flush), then the other parts in reverse start order."""
    producers = [c for c in started if getattr(c, "produces_events", False)]
    return producers + [c for c in reversed(started) if c not in producers]


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.ctx: ServiceContext | None = None
        self.components: list[Component] = []

    def boot(self) -> ServiceContext:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        device_id = resolve_device_id(settings["device.id"], settings.data_dir)
        log.info("facepro starting: device %s (%s), data dir %s", device_id, settings["device.name"],
                 settings.data_dir)
        from edge.backup.restore import recover_interrupted_restore

        recover_interrupted_restore(settings)  # a restore cut short: finish it or discard it
        schema_version = migrate_database(settings)
        self.ctx = ServiceContext(settings=settings, device_id=device_id)
        self.ctx.metrics.set("schema_version", schema_version)
        return self.ctx

    def request_stop(self, *_: Any) -> None:
        self.stop_event.set()

    def run(self) -> int:
        from edge.pipeline.native_log import route_native_stderr

        route_native_stderr(self.settings["cameras"])  # FFmpeg's own lines through our logger
        ctx = self.boot()
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.components = build_components(ctx)
            started: list[Component] = []
            try:
                for component in self.components:
                    log.info("starting %s", component.name)
                    component.start()
                    started.append(component)
                sdnotify.notify("READY=1\nSTATUS=running")
                log.info("facepro running")
                interval = sdnotify.watchdog_interval_s() or 5.0
                was_healthy = True
                last_problems: list[str] = []
                while not self.stop_event.wait(interval):
                    ok, problems = components_healthy(started)
                    if ok:
                        # Only a healthy process pings: a stuck part lets the watchdog restart us.
                        sdnotify.notify("WATCHDOG=1" if was_healthy else "WATCHDOG=1\nSTATUS=running")
                    elif was_healthy or problems != last_problems:
                        log.warning("unhealthy, not pinging the watchdog: %s", "; ".join(problems))
                        sdnotify.notify("STATUS=unhealthy: " + "; ".join(problems)[:200])
                    last_problems = problems
                    was_healthy = ok
                log.info("stop requested")
                sdnotify.notify("STOPPING=1")
            finally:
                for component in stop_order(started):
                    try:
                        component.stop()
                    except Exception:
                        log.exception("stopping %s failed", component.name)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("facepro stopped")
        return 0
