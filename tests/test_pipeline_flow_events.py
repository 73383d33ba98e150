"""Events: cooldown per person per camera, rows + snapshots in real SQLite files, retention, low disk."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.bus import EventBus
from edge.db.events import EventStore
from edge.events import EventSink, Retention, free_mb
from tests.support.db import migrated_db

LIN = "Lin-Manuel Miranda"


@pytest.fixture
def store(tmp_path: Path):
    db = migrated_db(tmp_path / "db" / "facepro.db")
    with EventStore(db) as s:
        yield s


def frame(seed: int = 0, noisy: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if noisy:  # noise compresses badly: a large JPEG
        return rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, :, 1] = 120
    return img


def test_cooldown_per_person_per_camera(store: EventStore, data_dir: Path) -> None:
    bus = EventBus()
    published: list[dict] = []
    bus.subscribe("event", published.append)
    sink = EventSink(store, data_dir, bus=bus, match_threshold=0.40, cooldown_s=10.0, min_free_mb=0)
    img = frame()
    # t=0: Lin (0.62) and an unknown face (similarity 0.2 < threshold) -> two events
    events = sink.handle("door", img, [LIN, LIN], [0.62, 0.20], [0.9, 0.8], clock=0.0)
    assert [(e.type, e.person) for e in events] == [("face_recognized", LIN), ("face_unknown", None)]
    # within the cooldown, same camera: nothing, however many faces
    for t in (1.0, 5.0, 9.9):
        assert sink.handle("door", img, [LIN, None, None], [0.7, -1.0, -1.0], [0.9, 0.9, 0.9], clock=t) == []
    # another camera has its own cooldown
    other = sink.handle("yard", img, [LIN], [0.55], [0.9], clock=3.0)
    assert [(e.camera, e.person) for e in other] == [("yard", LIN)]
    # after the cooldown: again, once for Lin, once for unknown
    later = sink.handle("door", img, [LIN, "Obama"], [0.45, 0.39], [0.9, 0.7], clock=10.0)
    assert [(e.type, e.person) for e in later] == [("face_recognized", LIN), ("face_unknown", None)]
    # a face exactly at the threshold is recognised
    assert sink.handle("gate", img, ["Obama"], [0.40], [0.9], clock=0.0)[0].type == "face_recognized"

    rows = store.list(limit=100)
    assert len(rows) == 6
    assert {(r["event_type"], r["object_label"], r["camera_name"]) for r in rows} == {
        ("face_recognized", LIN, "door"), ("face_unknown", "unknown", "door"), ("face_recognized", LIN, "yard"),
        ("face_recognized", "Obama", "gate")}
    for row in rows:
        assert row["identification_method"] == "face"
        assert row["snapshot_path"].startswith("snapshots/") and not row["snapshot_path"].startswith("/")
        snap = data_dir / row["snapshot_path"]
        assert snap.is_file() and cv2.imread(str(snap)) is not None
    assert not list((data_dir / "snapshots").rglob("*.tmp"))
    # the bus message: stored id, person None for unknown, ISO UTC timestamp with Z
    assert len(published) == 6
    unknown = next(p for p in published if p["type"] == "face_unknown")
    assert unknown["person"] is None and unknown["camera"] == "door"
    first = published[0]
    assert set(first) == {"id", "type", "person", "confidence", "camera", "timestamp", "snapshot"}
    assert first["timestamp"].endswith("Z") and first["timestamp"][10] == "T"
    assert first["id"] == rows[-1]["id"] and first["person"] == LIN and first["confidence"] == pytest.approx(0.62)
    assert [p["id"] for p in published] == sorted(r["id"] for r in rows)
    assert store.list(limit=10, person=LIN, camera="door")[0]["confidence"] == pytest.approx(0.45)


def test_age_retention_deletes_rows_snapshots_and_orphans(store: EventStore, data_dir: Path) -> None:
    sink = EventSink(store, data_dir, cooldown_s=0, min_free_mb=0)
    now = time.time()
    old = sink.handle("door", frame(), [LIN], [0.8], [0.9], clock=0, captured_at=now - 100 * 86400)
    new = sink.handle("door", frame(), [LIN], [0.8], [0.9], clock=1, captured_at=now - 3600)
    old_path = data_dir / old[0].snapshot
    os.utime(old_path, (now - 100 * 86400, now - 100 * 86400))
    orphan = data_dir / "snapshots" / "2020-01-01" / "orphan.jpg"  # a crash between file and row
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    os.utime(orphan, (now - 200 * 86400, now - 200 * 86400))

    result = Retention(store, data_dir, retention_days=90, min_free_mb=0).run(now)
    assert result["events"] == 1 and result["snapshots"] == 1 and result["orphans"] == 1
    assert not old_path.exists() and not orphan.exists() and not orphan.parent.exists()
    assert (data_dir / new[0].snapshot).is_file()
    assert [r["id"] for r in store.list()] == [new[0].id]
    # retention_days 0 keeps everything
    assert Retention(store, data_dir, retention_days=0, min_free_mb=0).prune_age(now + 10 ** 9)["events"] == 0


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_low_disk_prunes_oldest_snapshots_and_never_fills_the_disk(tmp_path: Path, small_disk: Path) -> None:
    """A year of events on a 6 MB data disk: oldest snapshots go first, no write ever fails."""
    db = migrated_db(tmp_path / "db" / "facepro.db")  # the database lives elsewhere
    data_dir = small_disk
    with EventStore(db) as store:
        sink = EventSink(store, data_dir, cooldown_s=0, min_free_mb=2.5, retention_days=400)
        start = time.time() - 365 * 86400
        noisy = frame(1, noisy=True)
        sizes = []
        for i in range(60):  # ~175 KB per snapshot: ~10 MB written to a 6 MB disk
            when = start + i * 6 * 86400
            events = sink.handle("door", noisy, [LIN], [0.9], [0.9], clock=float(i), captured_at=when)
            assert len(events) == 1
            if events[0].snapshot:
                sizes.append((data_dir / events[0].snapshot).stat().st_size)
        assert min(sizes) > 150_000
        assert free_mb(data_dir) > 1.0  # never ran the disk full
        rows = sorted(store.list(limit=100), key=lambda r: r["id"])
        assert len(rows) == 60, "every event is recorded even when its snapshot is pruned"
        kept = [r for r in rows if r["snapshot_path"]]
        pruned = [r for r in rows if not r["snapshot_path"]]
        assert pruned and kept
        # oldest first: every pruned event is older than every kept one
        assert max(r["id"] for r in pruned) < min(r["id"] for r in kept)
        for r in kept:
            assert (data_dir / r["snapshot_path"]).is_file()
        on_disk = {p.relative_to(data_dir).as_posix() for p in (data_dir / "snapshots").rglob("*.jpg")}
        assert on_disk == {r["snapshot_path"] for r in kept}

        # Something else fills the disk: snapshots are pruned (all of them if need be), and
        # once nothing is left to prune events go on being recorded without one.
        snapshots = []
        for round_ in range(2):
            with open(data_dir / f"filler{round_}.bin", "wb") as fh:
                fh.write(b"\0" * int((free_mb(data_dir) - 0.5) * 1024 * 1024))
            when = start + (400 + round_) * 86400
            event = sink.handle("door", noisy, [LIN], [0.9], [0.9], clock=100.0 + round_, captured_at=when)[0]
            snapshots.append(event.snapshot)
        assert snapshots[0] is not None and snapshots[1] is None
        assert not any(r["snapshot_path"] for r in store.list(limit=100))
        assert not list((data_dir / "snapshots").rglob("*.jpg"))
        assert store.count() == 62


def test_events_list_cli_filters_and_json(store: EventStore, data_dir: Path, write_settings, tmp_path: Path) -> None:
    import json

    from tests.support.cli import run_cli

    sink = EventSink(store, data_dir, cooldown_s=0, min_free_mb=0)
    sink.handle("door", frame(), [LIN], [0.7], [0.9], clock=0)
    sink.handle("yard", frame(), [None], [-1.0], [0.8], clock=0)
    settings = write_settings({"database": {"path": str(store.db_path)}})
    out = run_cli(settings, "events", "list", "--json", "--camera", "door")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 1 and rows[0]["person"] == LIN and rows[0]["camera"] == "door"
    assert rows[0]["timestamp"].endswith("Z")
    out = run_cli(settings, "events", "list", "--person", "unknown")
    assert out.returncode == 0 and "yard" in out.stdout and "face_unknown" in out.stdout and "door" not in out.stdout
    out = run_cli(settings, "events", "list", "--limit", "0")
    assert out.returncode == 2 and "--limit" in out.stderr
