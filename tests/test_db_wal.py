"""The write-ahead log stays small: the pipeline checkpoints and truncates it, no long-lived
connection of the service holds a read snapshot that would stop that, and a reader that does is
reported instead of the WAL growing in silence."""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from edge.config import load_settings
from edge.db.connection import WAL_SIZE_LIMIT_BYTES, connect
from edge.db.events import EventStore
from edge.db.migrate import migrate_database
from edge.db.outbox import EventOutbox
from edge.pipeline import service as pipeline_service
from tests.conftest import CLIP
from tests.support.context import pipeline_with_telemetry
from tests.support.waiting import wait_until


def wal_size(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_checkpoint_truncates_the_wal_and_names_a_reader_that_blocks_it(write_settings) -> None:
    settings = load_settings(write_settings(), env={})
    migrate_database(settings)
    db = Path(settings.db_path)
    with EventStore(db) as store:
        outbox = EventOutbox(db)
        for i in range(400):
            store.insert("face_unknown", "unknown", 0.7, "door", None, time.time() + i)
        outbox.fetch_after(0, 50)  # the publisher's read, as it runs
        assert wal_size(db) > 100_000
        assert store.checkpoint()[0] is True
        assert wal_size(db) == 0

        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM events").fetchone()  # a snapshot held open
        for i in range(50):
            store.insert("face_unknown", "unknown", 0.7, "door", None, time.time() + i)
        complete, frames, done = store.checkpoint()
        assert complete is False and frames > 0
        reader.execute("COMMIT")
        reader.close()
        assert store.checkpoint()[0] is True and wal_size(db) == 0
        outbox.close()


def test_the_wal_is_cut_back_after_a_checkpoint(tmp_path: Path) -> None:
    """4 MB written: SQLite's own checkpoints leave the WAL at its peak, the project's limit cuts it."""
    def write(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (x BLOB)")
        for _ in range(40):
            conn.execute("INSERT INTO t VALUES (zeroblob(100000))")

    plain = sqlite3.connect(tmp_path / "plain.db", isolation_level=None)
    plain.execute("PRAGMA journal_mode = WAL")
    write(plain)
    assert wal_size(tmp_path / "plain.db") > 2 * WAL_SIZE_LIMIT_BYTES
    plain.close()
    ours = connect(tmp_path / "ours.db")
    write(ours)
    assert 0 < wal_size(tmp_path / "ours.db") <= WAL_SIZE_LIMIT_BYTES
    ours.close()


def test_the_running_service_checkpoints_and_holds_no_snapshot(write_settings, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(pipeline_service, "WAL_CHECKPOINT_INTERVAL_S", 1.0)
    settings = load_settings(write_settings({
        "cameras": [{"name": "stage", "source": str(CLIP), "loop": True, "detect_fps": 0, "motion": False}],
        "recognition": {"cooldown_s": 0.2},
        "telemetry": {"sample_interval_s": 0.5}}), env={})
    _ctx, pipeline, telemetry = pipeline_with_telemetry(settings, persist=True)
    caplog.set_level(logging.DEBUG, logger="edge.pipeline.service")
    db = Path(settings.db_path)
    pipeline.start()
    telemetry.start()
    try:
        wait_until(lambda: sum(1 for r in caplog.records if "database checkpoint:" in r.getMessage()) >= 3,
                   60, "three checkpoints by the pipeline")
        # while events, telemetry and the gallery connection are all live, an outside checkpoint
        # completes: nobody keeps a read snapshot open between its statements
        outside = sqlite3.connect(db, isolation_level=None)
        try:
            busy = outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            outside.close()
        events = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        telemetry.stop()
        pipeline.stop()
    assert busy == 0
    assert events > 0
    assert not [r for r in caplog.records if "checkpoint incomplete" in r.getMessage()]
