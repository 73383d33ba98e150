"""The telemetry component: a sampler thread that measures, remembers and alerts.

Every ``telemetry.sample_interval_s`` (1 s by default) it builds a snapshot (cameras, stages,
process, system, disks, GPU, models, MQTT and backup state), adds the chartable figures to
the in-memory :class:`History`, feeds the alert rules, and writes completed one-minute
aggregates to SQLite (``metrics_minutely``, retention ``telemetry.history_retention_days``;
0 keeps none). The service puts it in ``ctx.telemetry`` (``snapshot()`` / ``history()``) and
its rules in ``ctx.alerts`` (``active()``). Each section is measured on its own: one that
fails (a GPU library that raises) is reported in ``errors`` and the rest continue; a part
that is not running (its ``ctx`` slot is None) gives the section's empty value.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.context import ServiceContext
from edge.db.metrics_store import MetricsStore, MinuteRow
from edge.metrics import CAMERA_COUNTERS, DETECT_FIGURES, STAGES
from edge.telemetry.alerts import AlertManager, backup_figures, iso_utc, signals_from_snapshot
from edge.telemetry.gpu import GpuMonitor, Probe
from edge.telemetry.history import History, SeriesKey
from edge.telemetry.system import SystemProbe, disk_figures

log = logging.getLogger(__name__)

PERSIST_LOCAL_TYPES = ("local", "usb", "mounted")
PURGE_EVERY_S = 3600.0


class Telemetry:
    name = "telemetry"

    def __init__(self, ctx: ServiceContext, *, gpu_probes: Sequence[Probe] | None = None,
                 clock: Callable[[], float] = time.time, persist: bool = True) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.interval_s = float(settings.get("telemetry.sample_interval_s", 1.0) or 1.0)
        self.retention_days = float(settings.get("telemetry.history_retention_days", 30) or 0)
        self.clock = clock
        self.persist = persist and self.retention_days > 0
        self.history_store = History(fine_step_s=max(1.0, self.interval_s))
        self.gpu = GpuMonitor(gpu_probes)
        self.system = SystemProbe()
        self.store: MetricsStore | None = None
        self.alerts = AlertManager(settings.get("alerts", {}) or {}, bus=ctx.bus, clock=clock)
        self._latest: dict[str, Any] | None = None
        self._latest_lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self._prev_counters: dict[tuple[str, str], float] = {}
        self._prev_t: float | None = None
        self._last_purge = 0.0
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.open_store()
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def open_store(self) -> None:
        """Open the history tables and load the last hour back (charts survive a restart)."""
        if self.store is not None:
            return
        try:
            self.store = MetricsStore(self.ctx.db_path, self.ctx.settings.get("database.busy_timeout_ms", 5000))
            self.alerts.store = self.store
            now = self.clock()
            if self.persist:
                self._purge(now)
            closed = self.store.close_open_alerts(iso_utc(now), "service restarted; the rule is evaluated afresh")
            if closed:
                log.info("closed %d alert(s) left raised by the previous run", closed)
            self.history_store.preload(self.store.load_minutes(since=now - self.history_store.coarse_span_s))
        except Exception as exc:
            log.warning("telemetry history unavailable (%s): keeping it in memory only", exc)
            self.store = None
            self.alerts.store = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s * 3))
            self._thread = None
        self._write_minutes(self.history_store.pending_minutes())
        self.gpu.close()
        if self.store is not None:
            self.alerts.store = None
            self.store.close()
            self.store = None

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval_s
            if next_at < time.monotonic():  # fell behind (suspended, overloaded): skip, no burst
                next_at = time.monotonic() + self.interval_s
            try:
                self.sample()
            except Exception:
                log.exception("telemetry sample failed")

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The latest sample (JSON-able); sampled now if there is none yet."""
        with self._latest_lock:
            latest = self._latest
        return latest if latest is not None else self.sample()

    def history(self, window_s: float = 600) -> dict[str, list[list[float]]]:
        """Chart series over the last ``window_s`` seconds: {name: [[unix_t, value], ...]}."""
        now = self.clock()
        older: list[MinuteRow] = []
        if window_s > self.history_store.coarse_span_s and self.store is not None:
            earliest = self.history_store.earliest() or now
            try:
                older = self.store.load_minutes(since=now - window_s, until=earliest)
            except Exception as exc:
                log.warning("cannot read telemetry history: %s", exc)
        return self.history_store.series(window_s, now, older)

    # -- sampling --------------------------------------------------------------------------

    def sample(self, now: float | None = None) -> dict[str, Any]:
        with self._sample_lock:
            now = self.clock() if now is None else now
            errors: dict[str, str] = {}
            snap: dict[str, Any] = {
                "at": iso_utc(now),
                "device_id": self.ctx.device_id,
                "uptime_s": round(now - self.ctx.started_at, 1),
                "interval_s": self.interval_s,
            }
            snap["cameras"] = self._section("cameras", errors, lambda: self._cameras(now), [])
            snap["stages"] = self._section("stages", errors, self._stages, {})
            snap["process"] = self._section("process", errors, self.system.process_figures, {})
            snap["system"] = self._section("system", errors, self.system.system_figures, {})
            snap["disks"] = self._section("disks", errors, self._disks, [])
            snap["storage"] = self._section("storage", errors, self._storage, None)
            snap["gpu"] = self._section("gpu", errors, self.gpu.read,
                                        {"available": False, "source": None, "reason": "GPU probe failed"})
            snap["models"] = self._section("models", errors, self._models, {"available": False})
            snap["mqtt"] = self._section("mqtt", errors, self._mqtt, None)
            snap["backup"] = self._section("backup", errors, lambda: self._backup(now), None)
            self._section("alerts", errors, lambda: self.alerts.evaluate(signals_from_snapshot(snap), now), [])
            snap["alerts"] = self.alerts.active()
            snap["errors"] = errors
            completed = self._section("history", errors, lambda: self.history_store.add(now, self._series(snap)), [])
            self._write_minutes(completed)
            if self.persist and now - self._last_purge > PURGE_EVERY_S:
                self._purge(now)
            with self._latest_lock:
                self._latest = snap
            return snap

    def _section(self, name: str, errors: dict[str, str], fn: Callable[[], Any], fallback: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            if name not in self._warned:  # once per section, not once per second
                self._warned.add(name)
                log.warning("telemetry: %s unavailable: %s", name, errors[name])
            return fallback

    def _cameras(self, now: float) -> list[dict[str, Any]]:
        metrics = self.ctx.metrics
        counters = metrics.counters()
        statuses: dict[str, dict[str, Any]] = {}
        pipeline = self.ctx.pipeline
        if pipeline is not None:
            statuses = {s["name"]: dict(s) for s in pipeline.cameras_status()}
        names = sorted(set(statuses) | {label for (name, label) in counters if label and name in CAMERA_COUNTERS})
        dt = now - self._prev_t if self._prev_t is not None else None
        cameras: list[dict[str, Any]] = []
        for name in names:
            status = statuses.get(name, {})
            entry: dict[str, Any] = {"name": name, "online": status.get("online")}
            for counter in CAMERA_COUNTERS:
                value = counters.get((counter, name), 0.0)
                entry[counter] = int(status.get(counter, value) or 0)
            for fps_key, counter in (("fps_capture", "frames_captured"), ("fps_processed", "frames_processed")):
                rate = None
                key = (counter, name)
                if dt and dt > 0:  # a counter first seen now started from 0 after the last sample
                    rate = max(0.0, (counters.get(key, 0.0) - self._prev_counters.get(key, 0.0)) / dt)
                reported = status.get(fps_key)
                entry[fps_key] = round(float(reported), 2) if reported is not None else (
                    round(rate, 2) if rate is not None else None)
            entry["last_frame_at"] = status.get("last_frame_at")
            entry["source_kind"] = status.get("source_kind")
            entry["recognition_paused"] = bool(status.get("recognition_paused"))  # no low_fps alert then
            for figure in DETECT_FIGURES:  # edge.pipeline.gate.detect_figures: decode/detect rates, motion
                if figure in status:
                    entry[figure] = status[figure]
            for field in ("error", "error_code", "decode_errors"):  # why a camera is offline, how damaged its stream
                entry[field] = status.get(field)
            cameras.append(entry)
        self._prev_counters = {k: v for k, v in counters.items() if k[0] in CAMERA_COUNTERS}
        self._prev_t = now
        return cameras

    def _stages(self) -> dict[str, dict[str, Any]]:
        stats = self.ctx.metrics.stage_stats()
        ordered = {stage: stats[stage] for stage in STAGES if stage in stats}
        ordered.update({k: v for k, v in stats.items() if k not in ordered})
        return {stage: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in s.items()}
                for stage, s in ordered.items()}

    def _disks(self) -> list[dict[str, Any]]:
        paths: list[tuple[str, Any, Any]] = [("data", "data", self.ctx.data_dir)]
        for target in self.ctx.settings.get("backup.targets", []) or []:
            if target.get("enabled", True) and target.get("type") in PERSIST_LOCAL_TYPES:
                paths.append((f"backup:{target['name']}", target["type"], target.get("path")))
        return disk_figures(paths)

    def _storage(self) -> dict[str, Any] | None:
        return self.ctx.storage.status() if self.ctx.storage is not None else None

    def _models(self) -> dict[str, Any]:
        pipeline = self.ctx.pipeline
        if pipeline is None:
            return {"available": False, "reason": "pipeline not running"}
        info = dict(pipeline.models_info())
        info["available"] = True
        return info

    def _mqtt(self) -> dict[str, Any] | None:
        mqtt = self.ctx.mqtt
        if mqtt is None or not self.ctx.settings.get("mqtt.enabled", False):
            return None
        status = mqtt.status()
        return {k: status.get(k) for k in ("connected", "broker", "last_connected_at", "unpublished", "skipped")
                if k in status}

    def _backup(self, now: float) -> dict[str, Any] | None:
        backups = self.ctx.backups
        if backups is None:
            return None
        status = dict(backups.last_status())
        settings = self.ctx.settings
        schedule = status["schedule"] if "schedule" in status else settings.get("backup.schedule")
        targets = status["targets"] if "targets" in status else settings.get("backup.targets")
        return backup_figures(status, now, self.ctx.started_at, bool(schedule) and bool(targets))

    @staticmethod
    def _series(snap: dict[str, Any]) -> dict[SeriesKey, float]:
        values: dict[SeriesKey, Any] = {}
        system, process, gpu = snap.get("system") or {}, snap.get("process") or {}, snap.get("gpu") or {}
        values[("cpu_percent", "")] = system.get("cpu_percent")
        values[("memory_percent", "")] = system.get("memory_percent")
        values[("load1", "")] = (system.get("load") or [None])[0]
        temps = system.get("temperatures_c") or {}
        values[("temperature_max_c", "")] = max(temps.values()) if temps else None
        values[("process_cpu_percent", "")] = process.get("cpu_percent")
        values[("rss_bytes", "")] = process.get("rss_bytes")
        if gpu.get("available"):
            values[("gpu_percent", "")] = gpu.get("utilization_percent")
            values[("gpu_temperature_c", "")] = gpu.get("temperature_c")
            values[("gpu_power_w", "")] = gpu.get("power_w")
        for disk in snap.get("disks") or []:
            if disk["name"] == "data":
                values[("data_free_bytes", "")] = disk.get("free_bytes")
        for camera in snap.get("cameras") or []:
            values[("fps", camera["name"])] = camera.get("fps_processed")
            values[("fps_capture", camera["name"])] = camera.get("fps_capture")
        for stage, stats in (snap.get("stages") or {}).items():
            if stats.get("window"):
                values[("stage.p95_s", stage)] = stats.get("p95_s")
        return {k: float(v) for k, v in values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}

    # -- persistence -----------------------------------------------------------------------

    def _write_minutes(self, rows: list[MinuteRow]) -> None:
        if not rows or not self.persist or self.store is None:
            return
        try:
            self.store.write_minutes(rows)
        except Exception as exc:  # disk full, locked: charts keep working from memory
            if "write" not in self._warned:
                self._warned.add("write")
                log.warning("cannot persist telemetry history: %s", exc)

    def _purge(self, now: float) -> None:
        self._last_purge = now
        if self.store is None:
            return
        try:
            self.store.purge(now - self.retention_days * 86400, iso_utc(now - self.retention_days * 86400))
        except Exception as exc:
            log.warning("cannot purge telemetry history: %s", exc)
