"""History: in-memory resolutions, minute aggregates in a real SQLite file, restart, retention."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.metrics_store import MetricsStore, MinuteRow
from edge.db.migrate import migrate_database
from edge.telemetry.component import Telemetry
from edge.telemetry.history import History, series_name

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def settings(write_settings):
    settings = load_settings(write_settings({"telemetry": {"sample_interval_s": 1.0,
                                                           "history_retention_days": 30}}), env={})
    migrate_database(settings)
    return settings


def run_samples(telemetry: Telemetry, ctx: ServiceContext, clock: Clock, start: float, seconds: int,
                frames_per_s: int = 5) -> None:
    for i in range(seconds):
        clock.t = start + i
        ctx.metrics.incr("frames_processed", frames_per_s, "door")
        ctx.metrics.observe("detect", 0.040, "door")
        telemetry.sample(now=clock.t)


def test_series_names() -> None:
    assert series_name("fps", "door") == "fps.door"
    assert series_name("stage.p95_s", "detect") == "stage.detect.p95_s"
    assert series_name("cpu_percent", "") == "cpu_percent"


def test_coarse_bucket_overlapping_the_fine_points_is_not_shown_twice() -> None:
    history = History()
    for i in range(700):  # the fine points start 3 s into a 10 s bucket
        history.add(T0 + 3 + i, {("x", ""): 1.0})
    points = history.series(3600, T0 + 702)["x"]
    fine_start = T0 + 3 + 100
    assert all(t + 5 <= fine_start for t, _ in points if t < fine_start)
    assert len([t for t, _ in points if t >= fine_start]) == 600


def test_resolutions_fine_then_coarse() -> None:
    history = History()
    for i in range(3000):
        history.add(T0 + i, {("cpu_percent", ""): float(i % 100)})
    now = T0 + 2999
    ten = history.series(600, now)["cpu_percent"]
    times = [t for t, _ in ten]
    assert len(ten) == 600 and all(b - a == pytest.approx(1.0) for a, b in zip(times, times[1:]))
    hour = history.series(3600, now)["cpu_percent"]
    hour_times = [t for t, _ in hour]
    assert hour_times == sorted(hour_times) and len(set(hour_times)) == len(hour_times)
    older = [t for t in hour_times if t < times[0]]
    assert older and all(b - a == pytest.approx(10.0) for a, b in zip(older, older[1:]))
    assert len(hour) < 600 + 3600 / 10 + 2
    # each coarse point is the mean of its 10 s bucket
    bucket_start = older[-1] - 5
    expected = sum((bucket_start - T0 + k) % 100 for k in range(10)) / 10
    assert hour[len(older) - 1][1] == pytest.approx(expected)


def test_minutes_persist_and_charts_survive_a_restart(settings) -> None:
    clock = Clock(T0)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    first = Telemetry(ctx, clock=clock)
    first.open_store()
    run_samples(first, ctx, clock, T0, 150)  # 2.5 minutes at 5 frames/s
    before = first.history(600)
    assert before["fps.door"][-1][1] == pytest.approx(5.0)
    first.stop()  # writes the half-finished third minute too

    store = MetricsStore(settings.db_path)
    rows = [r for r in store.load_minutes(since=T0 - 60) if r.metric == "fps" and r.label == "door"]
    store.close()
    assert [r.minute for r in rows] == [T0, T0 + 60, T0 + 120]
    assert [r.count for r in rows] == [59, 60, 30]  # the very first sample has no rate yet
    assert all(r.avg == pytest.approx(5.0) and r.min == pytest.approx(5.0) for r in rows)

    # a new process, 30 s later, on the same database file
    restart = T0 + 180
    ctx2 = ServiceContext(settings=settings, device_id="test-device")
    clock2 = Clock(restart)
    second = Telemetry(ctx2, clock=clock2)
    second.open_store()
    run_samples(second, ctx2, clock2, restart, 20, frames_per_s=8)
    after = second.history(600)
    second.stop()
    fps = after["fps.door"]
    old = [(t, v) for t, v in fps if t < restart]
    new = [(t, v) for t, v in fps if t >= restart]
    assert [t for t, _ in old] == [T0 + 30, T0 + 90, T0 + 150]  # minute midpoints from SQLite
    assert all(v == pytest.approx(5.0) for _, v in old)
    assert new and all(v == pytest.approx(8.0) for _, v in new)
    assert "cpu_percent" in after and "stage.detect.p95_s" in after


def test_completed_minutes_are_on_disk_without_a_clean_stop(settings) -> None:
    clock = Clock(T0)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx, clock=clock)
    telemetry.open_store()
    run_samples(telemetry, ctx, clock, T0, 125)  # no stop(): as if killed
    store = MetricsStore(settings.db_path)
    minutes = sorted({r.minute for r in store.load_minutes(since=T0)})
    store.close()
    assert minutes == [T0, T0 + 60]  # the open third minute is the only loss


def test_long_windows_read_older_minutes_from_sqlite(settings) -> None:
    store = MetricsStore(settings.db_path)
    day_ago = T0 - 86400
    store.write_minutes([MinuteRow(int(day_ago + 60 * i), "cpu_percent", "", 20.0 + i, 20.0, 30.0, 60)
                         for i in range(5)])
    store.close()
    clock = Clock(T0)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx, clock=clock)
    telemetry.open_store()
    run_samples(telemetry, ctx, clock, T0, 3)
    assert all(t >= T0 - 3600 for t, _ in telemetry.history(3600)["cpu_percent"])
    day = telemetry.history(2 * 86400)["cpu_percent"]
    telemetry.stop()
    assert [v for t, v in day if t < T0 - 3600] == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert len([t for t, _ in day if t >= T0]) == 3


def test_restart_in_the_same_minute_merges_rows(settings) -> None:
    store = MetricsStore(settings.db_path)
    store.write_minutes([MinuteRow(int(T0), "fps", "door", 4.0, 3.0, 5.0, 30)])
    store.write_minutes([MinuteRow(int(T0), "fps", "door", 10.0, 9.0, 11.0, 10)])
    (row,) = store.load_minutes(since=T0)
    store.close()
    assert row.count == 40 and row.avg == pytest.approx((4 * 30 + 10 * 10) / 40)
    assert (row.min, row.max) == (3.0, 11.0)


def test_retention_purges_old_minutes_and_alerts(settings) -> None:
    store = MetricsStore(settings.db_path)
    old, recent = T0 - 40 * 86400, T0 - 2 * 86400
    store.write_minutes([MinuteRow(int(old), "cpu_percent", "", 1.0, 1.0, 1.0, 1),
                         MinuteRow(int(recent), "cpu_percent", "", 2.0, 2.0, 2.0, 1)])
    store.record_alert("high_memory", "", "raised", 95.0, "old", "2026-01-01T00:00:00.000Z")
    store.close()
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx, clock=Clock(T0))  # 2027-01-15: the alert is older than 30 days
    telemetry.open_store()
    telemetry.stop()
    store = MetricsStore(settings.db_path)
    assert [r.minute for r in store.load_minutes(since=0)] == [int(recent)]
    assert store.alert_history() == []
    store.close()


def test_unwritable_database_keeps_history_in_memory(write_settings, tmp_path: Path) -> None:
    settings = load_settings(write_settings({"database": {"path": str(tmp_path / "missing" / "no.db")}}), env={})
    (tmp_path / "missing").write_text("a file where the directory should be")
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx, clock=Clock(T0))
    telemetry.open_store()
    assert telemetry.store is None
    run_samples(telemetry, ctx, Clock(T0), T0, 70)
    assert "fps.door" in telemetry.history(600)
    telemetry.stop()


def test_alerts_left_raised_by_a_previous_run_are_closed_at_start(settings) -> None:
    store = MetricsStore(settings.db_path)
    at = "2027-01-14T10:00:00.000Z"
    store.record_alert("high_memory", "", "raised", 95.0, "memory high", at)
    store.record_alert("camera_offline", "door", "raised", 1.0, "door offline", at)
    store.record_alert("camera_offline", "door", "cleared", 0.0, "door back", at)
    store.record_alert("low_disk", "data", "cleared", 2000.0, "ok", at)
    store.close()
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx, clock=Clock(T0))
    telemetry.open_store()
    telemetry.stop()
    store = MetricsStore(settings.db_path)
    history = store.alert_history()
    store.close()
    latest: dict[tuple[str, str], str] = {}
    for row in reversed(history):  # oldest first
        latest[(row["name"], row["subject"])] = row["state"]
    assert set(latest.values()) == {"cleared"}
    added = [r for r in history if "restarted" in (r["message"] or "")]
    assert [(r["name"], r["subject"]) for r in added] == [("high_memory", "")]
    # A second start adds nothing: there is no open alert left.
    telemetry = Telemetry(ServiceContext(settings=settings, device_id="test-device"), clock=Clock(T0 + 60))
    telemetry.open_store()
    telemetry.stop()
    store = MetricsStore(settings.db_path)
    assert len(store.alert_history()) == len(history)
    store.close()
