"""Alert rules: threshold + duration + hysteresis on synthetic series with an injected clock."""
from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from edge.bus import EventBus
from edge.db.metrics_store import MetricsStore
from edge.telemetry.alerts import AlertManager, backup_figures, signals_from_snapshot
from tests.conftest import REPO
from tests.support.db import migrated_db

DEFAULT_ALERTS = json.loads((REPO / "config" / "settings.json").read_text())["alerts"]


def rule(threshold: float, duration_s: float, hysteresis: float, enabled: bool = True) -> dict:
    return {"enabled": enabled, "threshold": threshold, "duration_s": duration_s, "hysteresis": hysteresis}


def run_series(manager: AlertManager, name: str, series: list[float | None], step_s: float = 1.0,
               subject: str = "") -> list[dict]:
    transitions = []
    for i, value in enumerate(series):
        transitions += manager.evaluate([(name, subject, value)], now=1_000_000.0 + i * step_s)
    return transitions


def test_step_up_then_down_raises_and_clears_exactly_once() -> None:
    manager = AlertManager({"enabled": True, "high_memory": rule(90, 10, 5)})
    series = [50.0] * 20 + [95.0] * 30 + [50.0] * 30
    transitions = run_series(manager, "high_memory", series)
    assert [t["state"] for t in transitions] == ["raised", "cleared"]
    raised, cleared = transitions
    # bad from t=20, raised once it has been bad for 10 s; good from t=50, cleared 10 s later
    assert raised["at"].endswith("Z") and raised["value"] == 95.0
    assert raised["at"] == "1970-01-12T13:47:10.000Z"  # 1_000_000 + 30 s
    assert cleared["at"] == "1970-01-12T13:47:40.000Z"  # 1_000_000 + 60 s
    assert manager.active() == []


def test_active_lists_raised_alert_with_since_and_latest_value() -> None:
    manager = AlertManager({"enabled": True, "high_memory": rule(90, 0, 5)})
    manager.evaluate([("high_memory", "", 93.0)], now=100.0)
    manager.evaluate([("high_memory", "", 97.5)], now=101.0)
    (active,) = manager.active()
    assert active["name"] == "high_memory" and active["subject"] == ""
    assert active["since"] == "1970-01-01T00:01:40.000Z"
    assert active["value"] == 97.5
    assert "above 90" in active["message"]


def test_noise_around_threshold_does_not_flap() -> None:
    rng = random.Random(7)
    manager = AlertManager({"enabled": True, "high_memory": rule(90, 5, 5)})
    # a noisy signal centred on the threshold (+-4, inside the hysteresis band below it):
    # once raised it must stay raised; it crosses 90 many times a minute
    noisy = [90 + rng.uniform(-4, 4) for _ in range(600)]
    crossings = sum(1 for a, b in zip(noisy, noisy[1:]) if (a > 90) != (b > 90))
    assert crossings > 100
    transitions = run_series(manager, "high_memory", [95.0] * 10 + noisy + [70.0] * 10)
    assert [t["state"] for t in transitions] == ["raised", "cleared"]


def test_short_spikes_shorter_than_duration_never_raise() -> None:
    manager = AlertManager({"enabled": True, "high_latency": rule(0.5, 10, 0.1)})
    spikes = ([0.9] * 9 + [0.2]) * 30  # 9 s bad, 1 s good, repeated: never 10 s in a row
    assert run_series(manager, "high_latency", spikes, subject="detect") == []


def test_below_rule_uses_hysteresis_above_threshold() -> None:
    manager = AlertManager({"enabled": True, "low_fps": rule(2.0, 3, 1.0)})
    # falls to 1 fps -> raised; recovering to 2.5 fps is inside the band: stays raised
    series = [10.0] * 5 + [1.0] * 5 + [2.5] * 20 + [3.5] * 5
    transitions = run_series(manager, "low_fps", series, subject="door")
    assert [(t["state"], t["subject"]) for t in transitions] == [("raised", "door"), ("cleared", "door")]
    assert transitions[1]["value"] == 3.5


def test_missing_values_reset_the_pending_timer_and_keep_state() -> None:
    manager = AlertManager({"enabled": True, "high_memory": rule(90, 5, 5)})
    series = [95.0, 95.0, 95.0, None, 95.0, 95.0, 95.0, 95.0]  # gap: never 5 s continuous
    assert run_series(manager, "high_memory", series) == []


def test_subjects_are_independent() -> None:
    manager = AlertManager({"enabled": True, "camera_offline": rule(0, 2, 0)})
    for i in range(5):
        manager.evaluate([("camera_offline", "front", 1.0), ("camera_offline", "back", 0.0)], now=float(i))
    assert [(a["name"], a["subject"]) for a in manager.active()] == [("camera_offline", "front")]


def test_disabled_rule_and_global_switch() -> None:
    off = AlertManager({"enabled": True, "high_memory": rule(90, 0, 5, enabled=False)})
    assert run_series(off, "high_memory", [99.0] * 5) == []
    all_off = AlertManager({"enabled": False, "high_memory": rule(90, 0, 5)})
    assert run_series(all_off, "high_memory", [99.0] * 5) == []


def test_transitions_are_logged_published_and_recorded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = migrated_db(tmp_path / "facepro.db")
    store = MetricsStore(db)
    bus = EventBus()
    published: list[dict] = []
    bus.subscribe("alert", published.append)
    manager = AlertManager(DEFAULT_ALERTS, bus=bus, store=store)
    caplog.set_level(logging.INFO, logger="edge.telemetry.alerts")
    series = [2000.0] * 5 + [500.0] * 70 + [1500.0] * 70  # MB free on the data disk
    transitions = run_series(manager, "low_disk", series, subject="data")
    store.close()

    assert [t["state"] for t in transitions] == ["raised", "cleared"]
    assert published == transitions
    assert set(published[0]) == {"name", "subject", "state", "value", "message", "at"}
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "edge.telemetry.alerts"]
    assert levels[0][0] == "WARNING" and "alert raised: low_disk [data]" in levels[0][1]
    assert levels[1][0] == "INFO" and "alert cleared: low_disk [data]" in levels[1][1]

    reopened = MetricsStore(db)  # a fresh connection: the rows are committed
    history = reopened.alert_history()
    reopened.close()
    assert [(h["name"], h["subject"], h["state"], h["value"]) for h in history] == [
        ("low_disk", "data", "cleared", 1500.0), ("low_disk", "data", "raised", 500.0)]
    assert history[1]["at"] == transitions[0]["at"]


def test_shipped_defaults_cover_every_rule() -> None:
    manager = AlertManager(DEFAULT_ALERTS)
    assert set(manager.rules) == {"low_fps", "high_latency", "high_memory", "high_temperature", "low_disk",
                                  "camera_offline", "backup_failed", "backup_overdue", "mqtt_disconnected", "disk_full"}


def test_backup_figures_failed_and_overdue() -> None:
    now = 1_700_000_000.0
    ok = backup_figures({"last_success_at": "2023-11-14T22:00:00Z", "last_result": "ok", "last_error": None,
                         "last_attempt_at": "2023-11-14T22:00:00Z"}, now, started_at=now - 10, scheduled=True)
    assert ok["failed"] is False and ok["overdue_s"] == pytest.approx(now - 1_699_999_200.0)
    failed = backup_figures({"last_success_at": "2023-11-14T22:00:00Z", "last_result": "failed",
                             "last_error": "target usb: not mounted", "last_attempt_at": "2023-11-14T22:10:00Z"},
                            now, started_at=now - 10, scheduled=True)
    assert failed["failed"] is True
    never = backup_figures({"last_success_at": None, "last_result": None, "last_error": None,
                            "last_attempt_at": None}, now, started_at=now - 50, scheduled=True)
    assert never["failed"] is False and never["overdue_s"] == pytest.approx(50)
    unscheduled = backup_figures({"last_success_at": None}, now, started_at=now - 50, scheduled=False)
    assert unscheduled["overdue_s"] is None
    # the backup manager's own verdict (it knows the schedule's period) decides when present
    weekly = {"last_success_at": "2023-11-12T22:00:00Z", "last_result": "ok", "overdue": False}
    assert backup_figures(weekly, now, now - 10, True)["overdue_s"] == 0.0
    assert backup_figures(weekly, now, now - 10, True)["since_success_s"] > 2 * 86400
    late = dict(weekly, overdue=True)
    assert backup_figures(late, now, now - 10, True)["overdue_s"] > 2 * 86400


def test_backup_overdue_and_mqtt_rules_through_snapshot_signals() -> None:
    manager = AlertManager(DEFAULT_ALERTS)
    t0 = 5_000_000.0
    for i in range(0, 400, 10):  # broker down for 400 s, backup 27 h old
        snap = {"mqtt": {"connected": False}, "backup": {"failed": False, "overdue_s": 27 * 3600.0 + i}}
        manager.evaluate(signals_from_snapshot(snap), now=t0 + i)
    names = {a["name"] for a in manager.active()}
    assert names == {"mqtt_disconnected", "backup_overdue"}
    snap = {"mqtt": {"connected": True}, "backup": {"failed": False, "overdue_s": 60.0}}
    cleared = manager.evaluate(signals_from_snapshot(snap), now=t0 + 400)
    # backup_overdue has duration 0: clears at once; MQTT waits 300 s of being connected
    assert [(t["name"], t["state"]) for t in cleared] == [("backup_overdue", "cleared")]


def test_signals_from_snapshot_skip_unknowns() -> None:
    snap = {
        "cameras": [{"name": "door", "online": False, "fps_processed": 0.0},
                    {"name": "yard", "online": True, "fps_processed": 12.0},
                    {"name": "lab", "online": None, "fps_processed": 3.0}],
        "stages": {"detect": {"window": 10, "p95_s": 0.2}, "persist": {"window": 0, "p95_s": 0.0}},
        "system": {"memory_percent": 40.0, "temperatures_c": {"coretemp/Package id 0": 55.0}},
        "gpu": {"available": False, "reason": "none"},
        "disks": [{"name": "data", "free_bytes": 2 * 1048576}, {"name": "backup:usb", "ok": False}],
        "mqtt": None, "backup": None,
    }
    signals = signals_from_snapshot(snap)
    assert ("camera_offline", "door", 1.0) in signals and ("camera_offline", "yard", 0.0) in signals
    assert not any(s[0] == "camera_offline" and s[1] == "lab" for s in signals)  # unknown state
    assert ("low_fps", "door", None) in signals  # offline: the offline rule speaks, not low_fps
    assert ("low_fps", "yard", 12.0) in signals
    assert ("high_latency", "persist", None) in signals
    assert ("low_disk", "data", 2.0) in signals and ("low_disk", "backup:usb", None) in signals
    assert ("high_temperature", "coretemp/Package id 0", 55.0) in signals
    assert not any(s[0] in ("mqtt_disconnected", "backup_failed") for s in signals)
