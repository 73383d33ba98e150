"""The Recognition switch on the real pipeline: a paused camera keeps capturing but nothing is
detected or recorded; the pause survives a restart; resuming brings recognition back."""
from __future__ import annotations

import time

import pytest

from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.events import EventStore
from edge.db.migrate import migrate_database
from edge.pipeline.pause import FILE_NAME, PauseSwitches
from edge.pipeline.service import Pipeline
from tests.conftest import CLIP
from tests.support.waiting import wait_until


def status(pipeline: Pipeline) -> dict:
    return next(s for s in pipeline.cameras_status() if s["name"] == "stage")


def events(settings) -> int:
    with EventStore(settings.db_path) as store:
        return store.count()


def start(settings) -> Pipeline:
    pipeline = Pipeline(ServiceContext(settings=settings, device_id="test"))
    pipeline.start()
    return pipeline


def test_pause_stops_recognition_survives_restart_and_resumes(write_settings):
    settings = load_settings(write_settings({
        "cameras": [{"name": "stage", "source": str(CLIP), "rate": "native", "loop": True}],
        "recognition": {"cooldown_s": 0.5}}))
    migrate_database(settings)
    pipeline = start(settings)
    try:
        wait_until(lambda: status(pipeline)["frames_processed"] >= 5 and events(settings) >= 1, 60,
                   "frames processed and an event recorded")
        assert status(pipeline)["recognition_paused"] is False
        assert pipeline.loop is not None
        feed = pipeline.loop.feed("stage")
        assert feed is not None
        skipped = feed.frames_skipped
        assert pipeline.set_recognition("stage", False) is False
        # A frame already in the detector finishes (a loaded machine can take longer than any fixed
        # wait); the one worker skipping a frame for the pause means none is in it any more.
        wait_until(lambda: feed.frames_skipped > skipped, 30, "a frame skipped for the pause")
        processed, recorded, captured = status(pipeline)["frames_processed"], events(settings), \
            status(pipeline)["frames_captured"]
        time.sleep(2.0)
        now = status(pipeline)
        assert now["frames_processed"] == processed and events(settings) == recorded
        assert now["frames_captured"] > captured + 10  # still capturing: status and fps stay live
        assert now["recognition_paused"] is True
        with pytest.raises(KeyError):
            pipeline.set_recognition("nowhere", False)
    finally:
        pipeline.stop()
    assert PauseSwitches(settings.data_dir).paused("stage")

    pipeline = start(settings)  # the pause survived the restart
    try:
        wait_until(lambda: status(pipeline)["frames_captured"] >= 20, 30, "frames captured after restart")
        assert status(pipeline)["frames_processed"] == 0 and status(pipeline)["recognition_paused"] is True
        assert pipeline.set_recognition("stage", True) is True
        wait_until(lambda: status(pipeline)["frames_processed"] >= 5, 30, "recognition resumed")
    finally:
        pipeline.stop()
    assert not PauseSwitches(settings.data_dir).paused("stage")


def test_a_damaged_pause_file_pauses_nothing(tmp_path):
    (tmp_path / FILE_NAME).write_text("{not json")
    switches = PauseSwitches(tmp_path)
    assert not switches.paused("stage")
    assert switches.set("stage", False) is True and switches.set("stage", False) is False
    assert PauseSwitches(tmp_path).paused("stage")
