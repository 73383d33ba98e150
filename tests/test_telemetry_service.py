"""The telemetry part inside ``facepro run``: it samples, alerts to the log and the database,
and leaves its minute of history on disk when the service stops."""
from __future__ import annotations

import signal
import time
from pathlib import Path

from edge.db.metrics_store import MetricsStore
from tests.support.service import start_service, wait_for_line


def test_run_samples_alerts_and_persists_history(write_settings, data_dir: Path) -> None:
    settings = write_settings({
        "mqtt": {"enabled": False},
        "web": {"enabled": False},
        "telemetry": {"sample_interval_s": 0.2, "history_retention_days": 1},
        # memory is always above 0 %: this rule must fire on the first sample
        "alerts": {"high_memory": {"enabled": True, "threshold": 0.0, "duration_s": 0, "hysteresis": 0.0}},
    })
    proc = start_service(settings)
    try:
        lines = wait_for_line(proc, "alert raised: high_memory")
        lines += wait_for_line(proc, "facepro running")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest[-2000:]
    warning = next(line for line in lines if "alert raised: high_memory" in line)
    assert "WARNING" in warning and "memory use" in warning

    store = MetricsStore(data_dir / "facepro.db")
    try:
        history = store.alert_history()
        rows = store.load_minutes(since=time.time() - 600)
    finally:
        store.close()
    assert [(h["name"], h["state"]) for h in history] == [("high_memory", "raised")]
    assert history[0]["value"] > 0 and history[0]["at"].endswith("Z")
    metrics = {r.metric for r in rows}
    assert {"cpu_percent", "memory_percent", "rss_bytes"} <= metrics
    assert sum(r.count for r in rows if r.metric == "memory_percent") >= 5  # >= 1 s at 5 Hz
