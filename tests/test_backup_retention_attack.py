"""Retention orders by what the device recorded, never by names anyone can choose (issue 13,
item 1, second bullet). The issue's attack: seven imported archives named for 2099, then one
real backup with keep 7, deleted every real archive and the new one, with status "ok"."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge.backup import delivery
from edge.telemetry.alerts import backup_figures
from tests.support.backup_env import make_env
from tests.support.cli import run_cli


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def _import_future_copies(manager, real: Path, tmp_path: Path, count: int) -> list[str]:
    """``count`` copies of a genuine archive, renamed for the year 2099 and imported (as the web upload does)."""
    names = []
    for i in range(count):
        upload = tmp_path / "upload" / str(i) / f"facepro_backup_dev-test_2099010{i + 1}T000000Z.zip"
        upload.parent.mkdir(parents=True)
        shutil.copy(real, upload)
        names.append(manager.import_archive(upload)["name"])
    return names


@pytest.mark.parametrize("keep", [7, 2])
def test_imported_future_archives_never_push_out_the_devices_own(tmp_path: Path, keep: int) -> None:
    settings, manager = make_env(tmp_path, keep=keep, people=1)
    backups = tmp_path / "backups"
    real = [manager.create(include=["db"])["name"] for _ in range(3)][-keep:]
    imported = _import_future_copies(manager, backups / real[-1], tmp_path, 7)
    assert _names(backups) == sorted(real + imported)

    result = manager.create(include=["db"])  # the real backup after the attack
    assert result["ok"], result
    own_after = real + [result["name"]]
    expected_own = own_after[-keep:]  # the newest by the device's log, whatever the names say
    assert _names(backups) == sorted(expected_own + imported)
    assert result["targets"][0]["pruned"] == own_after[:-keep]
    status = manager.last_status()
    assert status["last_result"] == "ok" and status["last_error"] is None

    # An explicit prune obeys the same order; imports are never counted or deleted.
    manager.prune(keep=1)
    assert _names(backups) == sorted([result["name"]] + imported)
    origins = {b["name"]: b["origin"] for b in manager.list()}
    assert origins[result["name"]] == "own" and {origins[n] for n in imported} == {"imported"}
    # the archive a delete by hand keeps is the newest by the log, not the 2099 names
    assert [b["name"] for b in manager.list() if b["newest_own"]] == [result["name"]]


def test_a_backup_pruned_right_after_it_was_written_is_a_failure_and_raises_backup_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should retention ever remove the archive it was just handed (a bug, a clock, a log
    it was tricked with), the backup fails and the backup_failed rule sees it."""
    _settings, manager = make_env(tmp_path, keep=1, people=1)
    first = manager.create(include=["db"])
    assert first["ok"]

    def broken_prune(t, keep, device_id, store, record=True):  # removes the newest archive
        newest = store.own_archives(t.name)[-1]
        t.remove(newest)
        return [newest]

    monkeypatch.setattr(delivery, "prune_target", broken_prune)
    result = manager.create(include=["db"])
    assert not result["ok"] and "removed by retention right after it was written" in result["errors"][0]
    status = manager.last_status()
    assert status["last_result"] == "failed" and "removed by retention" in status["last_error"]
    assert backup_figures(status, now=0.0, started_at=0.0, scheduled=False)["failed"] is True


def test_backup_delete_removes_imports_and_keeps_the_newest_own_unless_forced(tmp_path: Path) -> None:
    """``facepro backup delete TARGET ARCHIVE``: the way to remove imported archives, which
    retention never prunes; the newest archive the device made itself needs --force."""
    settings, manager = make_env(tmp_path, keep=7, people=1)
    backups = tmp_path / "backups"
    own = [manager.create(include=["db"])["name"] for _ in range(2)]
    imported = _import_future_copies(manager, backups / own[-1], tmp_path, 2)

    def delete(*args: str):
        return run_cli(settings.source, "backup", "delete", *args)

    for args, why in [(("local", "facepro_backup_dev-test_20300101T000000Z.zip"), "no archive named"),
                      (("local", "../settings.json"), "is not a backup archive name"),
                      (("usb9", imported[0]), "no backup target named 'usb9'"),
                      (("local",), "the following arguments are required: ARCHIVE")]:
        refused = delete(*args)
        assert refused.returncode == 2 and why in refused.stderr, (args, refused.stderr)
    refused = delete("local", own[-1])
    assert refused.returncode == 2 and "newest backup this device made itself" in refused.stderr \
        and "--force" in refused.stderr, refused.stderr
    assert _names(backups) == sorted(own + imported)  # nothing removed by any refusal

    for name in imported + own[:1]:  # imports (newest by name) and an older own archive go
        done = delete("local", name)
        assert done.returncode == 0 and f"ok: deleted {name} from local" in done.stdout, done.stderr
    assert _names(backups) == [own[-1]]
    assert delete("local", own[-1], "--force").returncode == 0
    assert _names(backups) == []
    assert [r["archive"] for r in manager.store.recent(10) if r["operation"] == "delete"] == \
        list(reversed(imported + own))
