"""What the dashboard and ``/api/status`` show, gathered from the service context.

Each part (pipeline, telemetry, alerts, backups, MQTT) may be missing (``None``) or may
fail while answering; its section then reads ``{"available": false, ...}`` and the rest of
the page still renders. Nothing here returns a secret: settings are never copied in.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import edge
from edge.context import ServiceContext, answer
from edge.db import web_queries
from edge.secrets import masked
from edge.timestamps import iso_utc

log = logging.getLogger(__name__)

P = TypeVar("P")


def _section(part_name: str, part: P | None, call: Callable[[P], Any]) -> dict[str, Any]:
    """One part's answer; every string in it masked (a part's error may quote a password,
    an SMB server's message say). These are the device's own values: nothing a client sent."""
    reply = answer(part, call, f"status: {part_name}")
    section: dict[str, Any] = {"available": reply.available}
    if reply.error:
        section["error"] = masked(reply.error)
    if reply.available:
        section["data"] = masked(reply.value)
    return section


def _stage_summary(ctx: ServiceContext) -> dict[str, dict[str, float]]:
    stats = ctx.metrics.stage_stats()
    return {stage: {"count": s["count"], "p50_ms": round(s["p50_s"] * 1000, 2),
                    "p95_ms": round(s["p95_s"] * 1000, 2)} for stage, s in stats.items()}


def system_summary(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """The few load figures a technician looks at, from the telemetry snapshot."""
    if not isinstance(snapshot, dict):
        return None
    system = snapshot.get("system") or {}
    process = snapshot.get("process") or {}
    gpu = snapshot.get("gpu") or {}
    temps = system.get("temperatures_c") or {}
    data_disk: dict[str, Any] = next((d for d in snapshot.get("disks") or [] if d.get("name") == "data"), {})
    return {
        "cpu_percent": system.get("cpu_percent"),
        "load1": (system.get("load") or [None])[0],
        "memory_percent": system.get("memory_percent"),
        "service_cpu_percent": process.get("cpu_percent"),
        "service_rss_bytes": process.get("rss_bytes"),
        "temperature_max_c": max(temps.values()) if temps else None,
        "data_free_bytes": data_disk.get("free_bytes"),
        "gpu_available": bool(gpu.get("available")),
        "gpu_percent": gpu.get("utilization_percent"),
        "gpu_temperature_c": gpu.get("temperature_c"),
    }


def collect_status(ctx: ServiceContext) -> dict[str, Any]:
    """The whole status as a JSON-able dict (what ``/api/status`` answers)."""
    now = time.time()
    cameras = _section("pipeline", ctx.pipeline, lambda p: p.cameras_status())
    models = _section("pipeline", ctx.pipeline, lambda p: p.models_info())
    telemetry = _section("telemetry", ctx.telemetry, lambda t: t.snapshot())
    return {
        "device": {"id": ctx.device_id, "name": ctx.settings["device.name"]},
        "version": edge.__version__,
        "time": iso_utc(now),
        "started_at": iso_utc(ctx.started_at),
        "uptime_s": round(now - ctx.started_at, 1),
        "schema_version": ctx.metrics.gauge("schema_version"),
        "models": models,
        "cameras": cameras,
        "stages": _stage_summary(ctx),
        "system": system_summary(telemetry.get("data")),
        "telemetry": telemetry,
        "alerts": _section("alerts", ctx.alerts, lambda a: a.active()),
        "mqtt": (_section("mqtt", ctx.mqtt, lambda m: m.status())
                 if ctx.mqtt is not None or ctx.settings["mqtt.enabled"] else {"available": False, "off": True}),
        "backup": _section("backups", ctx.backups, lambda b: b.last_status()),
        "storage": _section("storage", ctx.storage, lambda s: s.status()),
        "health": health(ctx),
    }


def health(ctx: ServiceContext) -> dict[str, Any]:
    """``{"status": "ok"}`` or ``{"status": "unhealthy", "reasons": [...]}``.

    Healthy means: the database answers, the data disk is not full, the pipeline says it is
    healthy, and every camera it runs is online. A full disk adds the state ``disk_full``.
    """
    reasons: list[str] = []
    db_ok, db_detail = web_queries.probe(ctx.db_path)
    if not db_ok:
        reasons.append(db_detail)
    disk = answer(ctx.storage, lambda s: s.status(), "status: storage")
    disk_full = bool(disk.available and disk.value and disk.value.get("disk_full"))
    if disk_full and disk.value is not None:
        reasons.append(f"disk_full: the data disk is full since {disk.value.get('since')}; "
                       f"{disk.value.get('events_pending')} event(s) held in memory, "
                       f"{disk.value.get('events_lost')} lost")
    if ctx.pipeline is None:
        reasons.append("pipeline is not running")
    else:
        checked = answer(ctx.pipeline, lambda p: p.healthy(), "status: pipeline")
        if not checked.available or checked.value is None:
            reasons.append(f"pipeline health check failed: {checked.error}")
        else:
            ok, pipeline_reasons = checked.value
            if not ok:
                reasons.extend(pipeline_reasons or ["pipeline reports unhealthy"])
        cameras = answer(ctx.pipeline, lambda p: p.cameras_status(), "status: pipeline")
        if not cameras.available or cameras.value is None:
            reasons.append(f"camera status unavailable: {cameras.error}")
        else:
            for camera in cameras.value:
                if not camera.get("online"):
                    reason = f"camera {camera.get('name')} is offline"
                    if reason not in reasons:
                        reasons.append(reason)
    if reasons:
        result: dict[str, Any] = {"status": "unhealthy", "reasons": masked(reasons)}
        if disk_full:
            result["disk_full"] = True
        return result
    return {"status": "ok"}


def chart_series(ctx: ServiceContext, window_s: float = 600) -> dict[str, Any]:
    """The monitoring history grouped into the dashboard's charts.

    Returns ``{"available": bool, "charts": [{"id", "title", "unit", "series": {label: [[t, v], ...]}}]}``.
    """
    reply = answer(ctx.telemetry, lambda t: t.history(window_s), "status: telemetry")
    available, history, error = reply.available, reply.value, reply.error
    if not available:
        return {"available": False, "error": error, "charts": []}
    history = history or {}
    charts: list[dict[str, Any]] = []

    def add(chart_id: str, title: str, unit: str, series: dict[str, list[list[float]]], scale: float = 1.0) -> None:
        if scale != 1.0:
            series = {k: [[t, v * scale] for t, v in pts if v is not None] for k, pts in series.items()}
        charts.append({"id": chart_id, "title": title, "unit": unit, "series": series})

    fps = {name[4:]: pts for name, pts in history.items() if name.startswith("fps.")}
    add("fps", "Frames per second", "fps", fps)
    for key, title in (("cpu_percent", "CPU"), ("memory_percent", "Memory"), ("gpu_percent", "GPU")):
        add(key, title, "%", {title: history[key]} if key in history else {})
    stages = sorted(name for name in history if name.startswith("stage.") and name.endswith(".p95_s"))
    for name in stages:
        stage = name[len("stage."):-len(".p95_s")]
        add(f"stage-{stage}", f"{stage} (p95)", "ms", {stage: history[name]}, scale=1000.0)
    return {"available": True, "charts": charts}


class TTLCache:
    """Answers computed at most once per ``ttl_s`` per key, however many clients ask.

    Bounds the CPU the status page can take from the pipeline: ten open dashboards or a
    client polling in a loop cost one status computation per second, not one per request.
    Concurrent askers of a stale key wait for the one computation instead of repeating it.
    At most ``max_entries`` keys are kept (expired ones go first, then the least recently
    used): a client asking for a new key with every request cannot grow it.
    """

    def __init__(self, ttl_s: float = 1.0, max_entries: int = 32) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max(1, int(max_entries))
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._key_locks: dict[Any, threading.Lock] = {}

    def __len__(self) -> int:
        with self._lock:
            return max(len(self._entries), len(self._key_locks))

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and time.monotonic() - entry[0] < self.ttl_s:
                    self._entries.move_to_end(key)
                    return entry[1]
            value = compute()
            with self._lock:
                self._entries[key] = (time.monotonic(), value)
                self._entries.move_to_end(key)
                self._evict()
            return value

    def _evict(self) -> None:
        """Under ``_lock``: drop expired entries, then the least recently used, down to the bound;
        a key's lock goes with its entry unless a computation holds it."""
        if len(self._entries) > self.max_entries:
            now = time.monotonic()
            for key in [k for k, (t, _v) in self._entries.items() if now - t >= self.ttl_s]:
                del self._entries[key]
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        for key in [k for k, lock in self._key_locks.items() if k not in self._entries and not lock.locked()]:
            del self._key_locks[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def cached_status(ctx: ServiceContext, cache: TTLCache) -> dict[str, Any]:
    return cache.get("status", lambda: collect_status(ctx))


def cached_charts(ctx: ServiceContext, cache: TTLCache, window_s: float = 600) -> dict[str, Any]:
    return cache.get(("charts", round(window_s)), lambda: chart_series(ctx, window_s))
