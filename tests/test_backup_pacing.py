"""The backup's I/O pacing (see scripts/bench_backup.py for the timing): the snapshot is
flushed as it is copied and large files are shrunk in steps before they are unlinked.
These check that the pacing keeps every guarantee; timings are not asserted."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from edge.backup import pacing as arc
from edge.backup.target_specs import make_target
from edge.backup.targets import TEMP_PREFIX
from edge.db.connection import connect, online_backup


def test_snapshot_flushed_every_step_is_consistent_while_a_writer_commits(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    conn = connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    conn.execute("BEGIN")
    conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) "
                 "INSERT INTO t (blob) SELECT randomblob(2000) FROM c")
    conn.execute("COMMIT")
    conn.close()
    stop = threading.Event()

    def write() -> None:
        writer = connect(db)
        try:
            while not stop.is_set():
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("INSERT INTO t (blob) VALUES (randomblob(2000))")
                writer.execute("COMMIT")
        finally:
            writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    source = connect(db)
    steps: list[int] = []
    try:
        before = source.execute("SELECT count(*) FROM t").fetchone()[0]
        # one page per step, flushed after every step: the most syncs the pacing can do
        online_backup(source, tmp_path / "snap.db", pages=1, sync_every_bytes=1,
                      progress=lambda remaining, total: steps.append(remaining))
    finally:
        stop.set()
        thread.join()
        source.close()
    assert len(steps) > 100 and steps[-1] == 0
    assert not (tmp_path / "snap.db.partial").exists()
    snap = connect(tmp_path / "snap.db", readonly=True)
    try:
        assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert snap.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert snap.execute("SELECT count(*) FROM t").fetchone()[0] >= before
    finally:
        snap.close()


def test_remove_file_gently_removes_large_files_links_and_missing_ones(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(300_000))
    arc.remove_file_gently(big, step=64 << 10)
    assert not big.exists()
    kept = tmp_path / "kept"
    kept.write_bytes(b"x" * 200_000)
    link = tmp_path / "link"
    link.symlink_to(kept)
    arc.remove_file_gently(link, step=1024)  # the link goes; what it points at is untouched
    assert not link.is_symlink() and kept.stat().st_size == 200_000
    arc.remove_file_gently(tmp_path / "missing")
    tree = tmp_path / "tree" / "sub"
    tree.mkdir(parents=True)
    (tree / "a").write_bytes(b"y" * 100_000)
    arc.remove_tree_gently(tmp_path / "tree", step=4096)
    assert not (tmp_path / "tree").exists()


def test_local_target_removes_a_large_archive_without_leaving_a_partial(tmp_path: Path) -> None:
    target = make_target({"name": "local", "type": "local", "path": str(tmp_path / "backups")})
    target.check()
    name = "facepro_backup_dev1_20260101T000000Z.zip"
    path = tmp_path / "backups" / name
    with open(path, "wb") as fh:
        fh.truncate(arc.REMOVE_STEP * 2 + 12345)  # sparse: large without writing it
    target.remove(name)
    assert os.listdir(tmp_path / "backups") == []
    # a removal cut off after the rename leaves a temp file that the next create sweeps
    (tmp_path / "backups" / f"{TEMP_PREFIX}abcd1234_{name}").write_bytes(b"partial")
    assert target.clean_partials("dev1") == 1
    assert os.listdir(tmp_path / "backups") == []
