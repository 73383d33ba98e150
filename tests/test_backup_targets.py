"""Targets on real filesystems and a real Samba server: USB mount checks, a full disk,
SMB writes, listing, restore and a server that stops answering."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from edge.backup.errors import BackupError
from edge.backup.target_specs import check_target, make_target
from edge.backup.targets import TEMP_PREFIX
from tests.support.backup_env import integrity, make_env, table_rows

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting tmpfs needs root")


@pytest.fixture
def tmpfs(tmp_path: Path):
    """Mount points made on demand: ``tmpfs("name", "1m")``; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "16m") -> Path:
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_unmounted_usb_path_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    plain = tmp_path / "usb-plain"
    plain.mkdir()
    missing = tmp_path / "usb-missing"
    settings, manager = make_env(tmp_path / "dev", targets=[
        {"name": "usb", "type": "usb", "path": str(plain)},
        {"name": "gone", "type": "usb", "path": str(missing)}])
    result = manager.create(include=["db"])
    assert not result["ok"]
    errors = {t["target"]: t["error"] for t in result["targets"]}
    assert "is not a mount point (the drive is not mounted); nothing was written" in errors["usb"]
    assert "does not exist (is the drive plugged in and mounted?)" in errors["gone"]
    assert _files(plain) == [] and not missing.exists()
    assert check_target({"name": "usb", "type": "usb", "path": str(plain)})["ok"] is False
    nfs = check_target({"name": "nas", "type": "mounted", "path": str(plain)})
    assert not nfs["ok"] and "is not a mount point (the share is not mounted)" in nfs["detail"]
    assert _files(plain) == []
    runs = manager.store.recent(2)
    assert {r["result"] for r in runs} == {"failed"}


@needs_root
def test_usb_mount_point_label_pin_and_full_target(tmp_path: Path, tmpfs) -> None:
    drive = tmpfs("usb", "16m")
    settings, manager = make_env(tmp_path / "dev", targets=[
        {"name": "usb", "type": "usb", "path": str(drive), "subdir": "facepro"}])
    result = manager.create()
    assert result["ok"], result
    assert _files(drive / "facepro") == [result["name"]]
    probe = check_target({"name": "usb", "type": "usb", "path": str(drive)}, min_free_bytes=1 << 20)
    assert probe["ok"] and probe["free_bytes"] > 0

    pinned = {"name": "usb", "type": "usb", "path": str(drive), "label": "FACEPRO-NOSUCH"}
    assert "no filesystem with label 'FACEPRO-NOSUCH' is attached" in check_target(pinned)["detail"]

    # A 1 MiB filesystem and an archive of about 2 MB: refused by the free-space check.
    small = tmpfs("small", "1m")
    big_faces = settings.data_dir / "faces" / "big"
    big_faces.mkdir()
    (big_faces / "noise.bin").write_bytes(os.urandom(2 << 20))
    full_settings, full = make_env(tmp_path / "dev", targets=[{"name": "small", "type": "usb", "path": str(small)}],
                                   seed=False)
    result = full.create(include=["db", "faces"])
    assert not result["ok"] and "not enough free space" in result["errors"][0]
    assert _files(small) == []

    # The same when the space check is fooled (another writer filled the disk meanwhile):
    # ENOSPC during the write, the temporary file removed, nothing under a final name.
    target = make_target({"name": "small", "type": "usb", "path": str(small)})
    target.free_bytes = lambda: 1 << 40  # type: ignore[method-assign]
    archive = tmp_path / "dev" / "facepro_backup_dev-test_20260101T000000Z.zip"
    archive.write_bytes(os.urandom(2 << 20))
    from edge.backup.targets import TargetError
    with pytest.raises(TargetError, match="No space left on device"):
        target.store(archive, archive.name, "0" * 64)
    assert _files(small) == []
    assert integrity(full_settings.db_path) == "ok"


@needs_root
def test_usb_subdir_with_device_placeholder_creates_its_parents_on_a_fresh_drive(tmp_path: Path, tmpfs) -> None:
    """Issue 13, item 7: subdir "fleet/{device_id}" on an empty drive (before: No such file)."""
    drive = tmpfs("fresh", "8m")
    _settings, manager = make_env(tmp_path / "dev", people=1, targets=[
        {"name": "usb", "type": "usb", "path": str(drive), "subdir": "fleet/{device_id}"}])
    result = manager.create(include=["db"])
    assert result["ok"], result
    assert _files(drive / "fleet" / "dev-test") == [result["name"]]
    assert manager.verify(result["name"], target="usb")["ok"]


@pytest.fixture(scope="module")
def samba(tmp_path_factory: pytest.TempPathFactory):
    from tests.support.samba import Samba, samba_unavailable_reason

    reason = samba_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = Samba(tmp_path_factory.mktemp("samba")).start()
    yield server
    server.stop()


def test_smb_target_create_list_verify_restore_prune(tmp_path: Path, samba) -> None:
    spec = samba.target("nas", subdir="facepro/dev", keep=2)
    settings, manager = make_env(tmp_path / "dev", targets=[spec], encrypt=True)
    names = [manager.create()["name"] for _ in range(3)]
    share_dir = samba.share_dir / "facepro" / "dev"
    assert _files(share_dir) == names[1:]  # retention over SMB, temp names gone
    listed = manager.list()
    assert [i["name"] for i in listed] == names[1:] and all(i["encrypted"] for i in listed)
    assert manager.verify(names[2], target="nas")["ok"]
    users = table_rows(settings.db_path, "users")
    import sqlite3
    conn = sqlite3.connect(settings.db_path)
    conn.execute("DELETE FROM users")
    conn.commit()
    conn.close()
    restored = manager.restore(names[2], target="nas", include=["db"])
    assert restored["ok"] and table_rows(settings.db_path, "users") == users
    assert check_target(spec)["ok"]
    assert samba.password not in (settings.data_dir / "backups").as_posix()

    bad = samba.target("nas", password="wrong-password")
    probe = check_target(bad)
    assert not probe["ok"] and "logon failed (check username and password)" in probe["detail"]
    assert "wrong-password" not in probe["detail"]
    nope = check_target(samba.target("nas", share="noshare"))
    assert not nope["ok"] and "noshare" in nope["detail"]


def test_smb_server_that_stops_answering_times_out(tmp_path: Path, samba) -> None:
    spec = samba.target("nas", subdir="stall", timeout_s=2)
    settings, manager = make_env(tmp_path / "dev", targets=[spec])
    target = make_target(spec)
    target.check()  # connected; now the server freezes
    pgid = os.getpgid(samba.pid)
    os.killpg(pgid, signal.SIGSTOP)
    try:
        archive = tmp_path / "facepro_backup_dev-test_20260101T000000Z.zip"
        archive.write_bytes(os.urandom(1 << 20))
        started = time.monotonic()
        from edge.backup.targets import TargetError
        with pytest.raises(TargetError, match="did not answer within 2 s"):
            target.store(archive, archive.name, "0" * 64)
        assert time.monotonic() - started < 15
    finally:
        os.killpg(pgid, signal.SIGCONT)
    result = manager.create(include=["db"])  # the server answers again: a fresh connection works
    assert result["ok"], result
    # The stalled upload's temporary file was swept by the next backup; no partial archive.
    assert _files(samba.share_dir / "stall") == [result["name"]]
    assert not any(n.startswith(TEMP_PREFIX) for n in _files(samba.share_dir / "stall"))


def test_local_target_check_and_list_errors(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path)
    assert check_target({"name": "l", "type": "local", "path": str(tmp_path / "b")})["ok"]
    low = check_target({"name": "l", "type": "local", "path": str(tmp_path / "b")}, min_free_bytes=1 << 60)
    assert not low["ok"] and "MiB free" in low["detail"]
    with pytest.raises(BackupError, match="no backup target named 'x'"):
        manager.list(target="x")
    with pytest.raises(BackupError, match="not a backup archive name"):
        manager.delete("local", "../../etc/passwd")
