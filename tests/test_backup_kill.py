"""SIGKILL during create and during restore (a real subprocess, killed by pid at a known
stage): previous backups intact, database consistent, never a partial archive under a
final name, never a half-restored data dir."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from edge.backup.targets import TEMP_PREFIX
from tests.conftest import FACEPRO, subprocess_env
from tests.support.backup_env import integrity, make_env, table_rows, tree_digest


def run_until(settings_path: Path, stage: str, marker: Path, *args: str) -> None:
    """Start ``facepro ARGS``, wait until it reaches ``stage``, SIGKILL it by pid."""
    env = subprocess_env(FACEPRO_TEST_PAUSE_AT=stage, FACEPRO_TEST_PAUSE_FILE=str(marker))
    proc = subprocess.Popen([*FACEPRO, "--config", str(settings_path), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"exited {proc.returncode} before {stage}: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"never reached {stage}")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    marker.unlink()


@pytest.mark.parametrize("stage", ["create-snapshot", "target-writing"])
def test_sigkill_during_create(tmp_path: Path, stage: str) -> None:
    settings, manager = make_env(tmp_path)
    first = manager.create()["name"]
    target_dir = tmp_path / "backups"
    run_until(settings.source, stage, tmp_path / "marker", "backup", "create")
    names = sorted(p.name for p in target_dir.iterdir())
    finals = [n for n in names if not n.startswith(TEMP_PREFIX)]
    assert finals == [first]  # no partial archive under a final name
    if stage == "target-writing":
        assert any(n.startswith(TEMP_PREFIX) for n in names)  # it really was mid-write
    assert [b["name"] for b in manager.list()] == [first]
    assert manager.verify(first, target="local")["ok"]  # the previous backup is intact
    assert integrity(settings.db_path) == "ok"
    # The next backup sweeps the leftovers (temporary file, staging area) and succeeds.
    second = manager.create()
    assert second["ok"]
    assert sorted(p.name for p in target_dir.iterdir()) == sorted([first, second["name"]])
    assert not (settings.data_dir / ".backup-staging").exists()


def _state(settings) -> tuple:
    return (table_rows(settings.db_path, "users"), table_rows(settings.db_path, "face_encodings"),
            tree_digest(settings.data_dir / "faces"))


@pytest.mark.parametrize("stage,expect", [
    ("restore-before-commit", "old"),
    ("restore-committed", "new"),
    ("restore-db-swapped", "new"),
])
def test_sigkill_during_restore_leaves_old_or_new_never_a_mix(tmp_path: Path, stage: str, expect: str) -> None:
    settings, manager = make_env(tmp_path)
    archive = tmp_path / "backups" / manager.create(include=["db", "faces"])["name"]
    new_state = _state(settings)
    # The device moves on: a person removed, a face image added.
    conn = sqlite3.connect(settings.db_path)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("DELETE FROM users WHERE name = 'person-0'")
    conn.commit()
    conn.close()
    (settings.data_dir / "faces" / "person-2" / "extra.jpg").write_bytes(os.urandom(999))
    old_state = _state(settings)
    assert old_state != new_state

    run_until(settings.source, stage, tmp_path / "marker", "backup", "restore", str(archive), "--yes")
    # What the next start does (facepro run and every backup command): finish or discard.
    if stage == "restore-db-swapped":
        from edge.service import Service

        Service(settings).boot()  # the boot of facepro run, before migrations
    else:
        outcome = manager.recover()
        assert outcome == ("completed" if expect == "new" else "discarded")
    assert _state(settings) == (new_state if expect == "new" else old_state)
    assert integrity(settings.db_path) == "ok"
    assert not (settings.data_dir / ".restore").exists() and not (settings.data_dir / "restore.journal").exists()
    assert manager.recover() is None
