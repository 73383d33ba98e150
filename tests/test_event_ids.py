"""Event ids are unique across restores and devices: a backup restored over newer events, then
new events; the ids published for them never repeat one published before (the integer row
ids do repeat, which is why they stay internal)."""
from __future__ import annotations

import re
from pathlib import Path

from edge.db.events import EventStore
from edge.mqtt.payloads import event_message
from tests.support.backup_env import make_env
from tests.support.db import event_rows, insert_event

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def published(db_path: Path, data_dir: Path, after: int = 0) -> dict[int, str]:
    """Row id -> the id the event's MQTT payload carries."""
    return {row["id"]: event_message(row, data_dir)["id"] for row in event_rows(db_path) if row["id"] > after}


def add_events(db_path: Path, n: int) -> None:
    with EventStore(db_path) as store:
        for i in range(n):
            store.insert("face_recognized", f"p{i}", 0.8, "door", None, 1_700_000_000 + i, detector_score=0.9)
    for _ in range(n):  # the trigger fills in the id for rows written without one
        insert_event(db_path, person=None)


def test_no_published_id_is_reused_after_a_restore(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path / "dev")
    seeded = published(settings.db_path, settings.data_dir)
    assert seeded and all(UUID4.match(uid) for uid in seeded.values())  # the migration gave old rows ids
    archive = manager.create()["name"]
    newest_in_backup = max(seeded)

    add_events(settings.db_path, 5)
    before_restore = published(settings.db_path, settings.data_dir, newest_in_backup)
    assert len(before_restore) == 10

    restored = manager.restore(tmp_path / "dev" / "backups" / archive, include=["db"])
    assert restored["ok"]
    add_events(settings.db_path, 5)
    after_restore = published(settings.db_path, settings.data_dir, newest_in_backup)

    assert set(after_restore) == set(before_restore)  # the row ids were handed out again ...
    assert not set(after_restore.values()) & set(before_restore.values())  # ... the published ids never
    everything = [*seeded.values(), *before_restore.values(), *after_restore.values()]
    assert len(everything) == len(set(everything))
    assert all(UUID4.match(uid) for uid in everything)

    # Another device restoring the same backup continues with ids of its own.
    other, other_manager = make_env(tmp_path / "other", seed=False, device_id="dev-other", targets=[
        {"name": "local", "type": "local", "path": str(tmp_path / "dev" / "backups")}])
    assert other_manager.restore(tmp_path / "dev" / "backups" / archive, include=["db"])["ok"]
    add_events(other.db_path, 5)
    theirs = published(other.db_path, other.data_dir, newest_in_backup)
    assert not set(theirs.values()) & set(everything)
