"""What the telemetry topic and the Home Assistant sensors show.

``ctx.telemetry.snapshot()`` is published as is when the telemetry part runs; without it,
:func:`minimal_telemetry` computes what it can (uptime, version, cameras, stage latencies,
basic system figures, the outbox counters). :func:`ha_state` flattens either into the
retained ``state`` topic that the discovered sensors read, so the discovery templates do
not depend on the telemetry part's layout.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import psutil

import edge
from edge.context import ServiceContext, ask
from edge.mqtt.payloads import iso_utc, now_iso
from edge.mqtt.topics import unique_object_ids

log = logging.getLogger(__name__)

PROCESSING_STAGES = ("decode", "preprocess", "detect", "embed", "match", "persist")


def cameras(ctx: ServiceContext) -> list[dict[str, Any]]:
    result = ask(ctx.pipeline, lambda p: p.cameras_status(), [], "pipeline.cameras_status()")
    return [c for c in (result or []) if isinstance(c, dict) and c.get("name") is not None]


def system_figures(ctx: ServiceContext) -> dict[str, Any]:
    figures: dict[str, Any] = {"cpu_percent": None, "memory_percent": None, "disk_free_mb": None,
                               "temperature_c": None}
    try:
        figures["cpu_percent"] = float(psutil.cpu_percent(interval=None))
        figures["memory_percent"] = float(psutil.virtual_memory().percent)
        figures["disk_free_mb"] = round(psutil.disk_usage(str(ctx.data_dir)).free / 1e6, 1)
    except Exception:
        log.debug("system figures unavailable", exc_info=True)
    try:
        temps = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
        values = [t.current for entries in temps.values() for t in entries if t.current is not None]
        figures["temperature_c"] = max(values) if values else None
    except Exception:
        pass
    return figures


def processing_ms(stage_stats: dict[str, dict[str, Any]]) -> float | None:
    """Mean time a frame spends in the processing stages, summed, in milliseconds."""
    total = 0.0
    seen = False
    for stage in PROCESSING_STAGES:
        stats = stage_stats.get(stage)
        if stats and stats.get("count"):
            total += float(stats["sum_s"]) / float(stats["count"])
            seen = True
    return round(total * 1000, 2) if seen else None


def minimal_telemetry(ctx: ServiceContext, outbox: dict[str, Any]) -> dict[str, Any]:
    """The telemetry payload when the telemetry part is not running (same top-level layout)."""
    stages = ctx.metrics.stage_stats()
    figures = system_figures(ctx)
    return {
        "device_id": ctx.device_id,
        "version": edge.__version__,
        "timestamp": now_iso(),
        "uptime_s": round(time.time() - ctx.started_at, 1),
        "cameras": cameras(ctx),
        "stages": stages,
        "processing_ms": processing_ms(stages),
        "system": {"cpu_percent": figures["cpu_percent"], "memory_percent": figures["memory_percent"],
                   "temperatures_c": {} if figures["temperature_c"] is None else {"max": figures["temperature_c"]}},
        "disks": [] if figures["disk_free_mb"] is None else
                 [{"name": "data", "kind": "data", "path": str(ctx.data_dir),
                   "free_bytes": int(figures["disk_free_mb"] * 1e6)}],
        "mqtt": outbox,
    }


def _lookup(tree: Any, *paths: str) -> Any:
    """The first non-None value at one of the dotted ``paths`` in a nested dict."""
    for path in paths:
        node = tree
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = None
                break
        if node is not None and not isinstance(node, (dict, list)):
            return node
    return None


def ha_state(ctx: ServiceContext, telemetry: dict[str, Any] | None) -> dict[str, Any]:
    """The flat retained state the Home Assistant sensors read (see discovery.py)."""
    telemetry = telemetry or {}
    cams = cameras(ctx) or [c for c in telemetry.get("cameras") or []
                            if isinstance(c, dict) and c.get("name") is not None]
    ids = unique_object_ids([str(c["name"]) for c in cams])
    gpu_info = telemetry.get("gpu")
    if not isinstance(gpu_info, dict):
        gpu_info = {}
    gpu = gpu_info.get("utilization_percent") if gpu_info.get("available") else None
    temps = _lookup_dict(telemetry, "system.temperatures_c")
    temperature = max(temps.values()) if temps else _lookup(telemetry, "system.temperature_c")
    disk_free_mb = None
    for disk in telemetry.get("disks") or []:
        if isinstance(disk, dict) and disk.get("name") == "data" and disk.get("free_bytes") is not None:
            disk_free_mb = round(disk["free_bytes"] / 1e6, 1)
    last_backup = None
    status = ask(ctx.backups, lambda b: b.last_status(), None, "backups.last_status()")
    if isinstance(status, dict):
        last_backup = iso_utc(status.get("last_success_at"))
    stages = ctx.metrics.stage_stats()
    cpu = _lookup(telemetry, "system.cpu_percent")
    memory = _lookup(telemetry, "system.memory_percent")
    system: dict[str, Any] = {}
    if cpu is None or memory is None or disk_free_mb is None or temperature is None:
        system = system_figures(ctx)
    disk_mb = _first(disk_free_mb, system.get("disk_free_mb"))
    return {
        "cameras": {
            ids[str(c["name"])]: {
                "name": c["name"],
                "fps": _rounded(c.get("fps_processed")),
                "fps_capture": _rounded(c.get("fps_capture")),
                "frames_dropped": c.get("frames_dropped"),
                "online": bool(c.get("online")),
                "recognition": "OFF" if c.get("recognition_paused") else "ON",
                "motion": c.get("motion"),
                "error": c.get("error"),
                "error_code": c.get("error_code"),
            } for c in cams
        },
        "processing_ms": processing_ms(stages),
        "cpu_percent": _first(cpu, system.get("cpu_percent")),
        "service_cpu_percent": _first(_lookup(telemetry, "process.cpu_percent"), _service_cpu()),
        "memory_percent": _first(memory, system.get("memory_percent")),
        "gpu_percent": gpu,
        "temperature_c": _first(temperature, system.get("temperature_c")),
        "disk_free_mb": disk_mb,
        "disk_free_gb": None if disk_mb is None else round(disk_mb / 1000, 2),
        "last_backup": last_backup,
        "disk_full": bool(ask(ctx.storage, lambda s: s.full, False, "storage.full")),
    }


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


_PROCESS: list[psutil.Process] = []


def _service_cpu() -> float | None:
    """This process's CPU use since the previous call (the first call primes the counter)."""
    try:
        if not _PROCESS:
            _PROCESS.append(psutil.Process())
            _PROCESS[0].cpu_percent(None)
        return float(_PROCESS[0].cpu_percent(None))
    except Exception:
        return None


def _lookup_dict(tree: Any, path: str) -> dict[str, Any]:
    node = tree
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return {}
    return {k: v for k, v in node.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
