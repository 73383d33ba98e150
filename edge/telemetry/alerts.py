"""Alert rules over telemetry signals: threshold, duration and hysteresis, no flapping.

Each rule in ``alerts.<rule>`` has ``enabled``, ``threshold``, ``duration_s`` and
``hysteresis``. A rule watches one signal per subject (a camera, a stage, a sensor, a disk):

* an "above" rule is *bad* while ``value > threshold`` and *good* again only once
  ``value <= threshold - hysteresis`` ("below" rules mirror this);
* it raises after the signal has been bad continuously for ``duration_s`` and clears after
  it has been good continuously for ``duration_s``; values inside the hysteresis band
  keep the current state and restart neither timer, values of ``None`` (no data) reset
  the pending timer and never change the state.

A transition is logged (warning on raise, info on clear), written to ``alert_history``
and published on the bus topic ``alert`` as {name, subject, state, value, message, at}.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge import timestamps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleKind:
    direction: str  # "above" or "below"
    unit: str
    message: str  # format fields: subject, value, threshold, duration


RULES: dict[str, RuleKind] = {
    "low_fps": RuleKind("below", "fps", "camera {subject}: processed {value:.1f} fps, below {threshold:g} fps"),
    "high_latency": RuleKind("above", "s", "stage {subject}: p95 latency {value:.3f} s, above {threshold:g} s"),
    "high_memory": RuleKind("above", "%", "memory use {value:.1f} %, above {threshold:g} %"),
    "high_temperature": RuleKind("above", "C", "sensor {subject}: {value:.1f} C, above {threshold:g} C"),
    "low_disk": RuleKind("below", "MB", "disk {subject}: {value:.0f} MB free, below {threshold:g} MB"),
    "disk_full": RuleKind("above", "", "the {subject} disk is full: writes fail, events are held in memory"),
    "camera_offline": RuleKind("above", "", "camera {subject} is offline"),
    "backup_failed": RuleKind("above", "", "the last backup failed"),
    "backup_overdue": RuleKind("above", "s", "no successful backup for {value:.0f} s (limit {threshold:g} s)"),
    "mqtt_disconnected": RuleKind("above", "", "MQTT broker disconnected for over {duration:g} s"),
}

Signal = tuple[str, str, "float | None"]  # (rule, subject, value)


@dataclass
class RuleConfig:
    enabled: bool
    threshold: float
    duration_s: float
    hysteresis: float


@dataclass
class _State:
    active: bool = False
    since: float | None = None  # when it was raised
    pending_since: float | None = None  # start of the current run towards the other state
    value: float | None = None
    message: str = ""


def iso_utc(t: float) -> str:
    """Alert times: ISO 8601 UTC to the millisecond."""
    return timestamps.iso_utc(t, ms=True) or ""


class AlertManager:
    def __init__(self, config: dict[str, Any], *, bus: Any = None, store: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.enabled = bool(config.get("enabled", True))
        self.rules: dict[str, RuleConfig] = {}
        for name in RULES:
            raw = config.get(name)
            if isinstance(raw, dict):
                self.rules[name] = RuleConfig(bool(raw["enabled"]), float(raw["threshold"]),
                                              float(raw["duration_s"]), float(raw["hysteresis"]))
        self.bus = bus
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}
        self._recent: list[dict[str, Any]] = []  # transitions when there is no store

    def evaluate(self, signals: Iterable[Signal], now: float | None = None) -> list[dict[str, Any]]:
        """Feed one value per (rule, subject); returns the transitions this caused."""
        now = self.clock() if now is None else now
        transitions: list[dict[str, Any]] = []
        if not self.enabled:
            return transitions
        with self._lock:
            for rule, subject, value in signals:
                cfg = self.rules.get(rule)
                if cfg is None or not cfg.enabled:
                    continue
                state = self._states.setdefault((rule, subject), _State())
                if value is None:
                    state.pending_since = None
                    continue
                value = float(value)
                kind = RULES[rule]
                if kind.direction == "above":
                    bad = value > cfg.threshold
                    good = value <= cfg.threshold - cfg.hysteresis
                else:
                    bad = value < cfg.threshold
                    good = value >= cfg.threshold + cfg.hysteresis
                heading = good if state.active else bad
                if state.active:
                    state.value = value
                if not heading:
                    state.pending_since = None
                    continue
                if state.pending_since is None:
                    state.pending_since = now
                if now - state.pending_since < cfg.duration_s:
                    continue
                state.pending_since = None
                state.active = not state.active
                message = kind.message.format(subject=subject, value=value, threshold=cfg.threshold,
                                              duration=cfg.duration_s)
                state.value = value
                if state.active:
                    state.since = now
                    state.message = message
                else:
                    message = f"cleared: {message}"
                transitions.append({"name": rule, "subject": subject,
                                    "state": "raised" if state.active else "cleared",
                                    "value": value, "message": message, "at": iso_utc(now)})
                if not state.active:
                    state.since = None
        for transition in transitions:
            self._announce(transition)
        return transitions

    def _announce(self, transition: dict[str, Any]) -> None:
        if transition["state"] == "raised":
            log.warning("alert raised: %s [%s] %s", transition["name"], transition["subject"], transition["message"])
        else:
            log.info("alert cleared: %s [%s] %s", transition["name"], transition["subject"], transition["message"])
        if self.store is not None:
            try:
                self.store.record_alert(transition["name"], transition["subject"], transition["state"],
                                        transition["value"], transition["message"], transition["at"])
            except Exception as exc:
                log.warning("cannot record alert transition: %s", exc)
        else:
            self._recent = (self._recent + [transition])[-200:]
        if self.bus is not None:
            self.bus.publish("alert", dict(transition))

    def active(self) -> list[dict[str, Any]]:
        """Raised alerts: {name, subject, since (ISO UTC), value, message}."""
        with self._lock:
            return [{"name": rule, "subject": subject, "since": iso_utc(state.since or 0),
                     "value": state.value, "message": state.message}
                    for (rule, subject), state in sorted(self._states.items()) if state.active]

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """Recorded transitions, newest first."""
        if self.store is not None:
            return self.store.alert_history(limit)
        return list(reversed(self._recent))[:limit]


# -- signals from a telemetry snapshot ------------------------------------------------------

def _parse_iso(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def backup_figures(status: dict[str, Any], now: float, started_at: float, scheduled: bool) -> dict[str, Any]:
    """``ctx.backups.last_status()`` plus three figures for the backup rules:

    * ``failed``: the latest attempt failed;
    * ``since_success_s``: seconds since the last success (since the service started when
      there was none);
    * ``overdue_s``: ``since_success_s`` while the backups are overdue, else 0; None without a
      schedule. When the backup manager reports ``overdue`` itself (it knows the schedule's
      period and grace) that decides; the rule's threshold is then a minimum age on top.
    """
    success = _parse_iso(status.get("last_success_at"))
    attempt = _parse_iso(status.get("last_attempt_at"))
    result = str(status.get("last_result") or "").lower()
    failed = result in ("failed", "error", "fail") or (
        bool(status.get("last_error")) and attempt is not None and (success is None or attempt > success))
    figures = dict(status)
    figures["failed"] = failed
    since = now - (success if success is not None else started_at)
    figures["since_success_s"] = since
    if not scheduled:
        figures["overdue_s"] = None
    elif isinstance(status.get("overdue"), bool):
        figures["overdue_s"] = since if status["overdue"] else 0.0
    else:
        figures["overdue_s"] = since
    return figures


def signals_from_snapshot(snapshot: dict[str, Any]) -> list[Signal]:
    signals: list[Signal] = []
    for camera in snapshot.get("cameras", []):
        name = camera["name"]
        online = camera.get("online")
        if online is not None:
            signals.append(("camera_offline", name, 0.0 if online else 1.0))
        paused = camera.get("recognition_paused")  # a paused camera processes nothing on purpose
        signals.append(("low_fps", name, camera.get("fps_processed") if online and not paused else None))
    for stage, stats in snapshot.get("stages", {}).items():
        signals.append(("high_latency", stage, stats["p95_s"] if stats.get("window") else None))
    system = snapshot.get("system") or {}
    if system.get("memory_percent") is not None:
        signals.append(("high_memory", "", system["memory_percent"]))
    temps = dict(system.get("temperatures_c") or {})
    gpu = snapshot.get("gpu") or {}
    if gpu.get("available"):
        for name, value in (gpu.get("temperatures_c") or {"gpu": gpu.get("temperature_c")}).items():
            if value is not None:
                temps[f"gpu/{name}"] = value
    signals += [("high_temperature", name, value) for name, value in sorted(temps.items())]
    for disk in snapshot.get("disks", []):
        free = disk.get("free_bytes")
        signals.append(("low_disk", disk["name"], free / 1048576 if free is not None else None))
    storage = snapshot.get("storage")
    if isinstance(storage, dict) and "disk_full" in storage:
        signals.append(("disk_full", "data", 1.0 if storage["disk_full"] else 0.0))
    mqtt = snapshot.get("mqtt")
    if isinstance(mqtt, dict) and "connected" in mqtt:
        signals.append(("mqtt_disconnected", "", 0.0 if mqtt["connected"] else 1.0))
    backup = snapshot.get("backup")
    if isinstance(backup, dict) and "failed" in backup:
        signals.append(("backup_failed", "", 1.0 if backup["failed"] else 0.0))
        signals.append(("backup_overdue", "", backup.get("overdue_s")))
    return signals
