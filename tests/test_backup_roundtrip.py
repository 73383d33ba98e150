"""Backups end to end on real files: round trip under a busy writer, encryption, settings
secrets, older schemas, retention, jobs and status, the CLI."""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from edge.backup.errors import BackupError
from edge.backup.manager import BackupManager
from edge.bus import EventBus
from edge.config import ConfigError, load_settings
from edge.db.migrator import Migrator
from tests.support.backup_env import MQTT_SECRET, EventWriter, integrity, make_env, table_rows, tree_digest
from tests.support.cli import run_cli
from tests.support.waiting import wait_until


def test_round_trip_while_a_writer_inserts_events(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path / "src", people=4)
    writer = EventWriter(settings.db_path)
    writer.start()
    try:
        time.sleep(0.2)
        before = writer.inserted
        result = manager.create()
        during = writer.inserted - before
    finally:
        writer.stop()
    assert writer.error is None
    assert result["ok"], result
    assert during > 0, "the writer made no progress while the backup ran"
    name = result["name"]
    archive = tmp_path / "src" / "backups" / name
    assert archive.is_file() and name.startswith("facepro_backup_dev-test_") and name.endswith("Z.zip")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert names[-1] == "manifest.json" and "db/facepro.db" in names
    with Migrator(settings.db_path) as migrator:
        latest = migrator.latest_version
    assert manifest["schema_version"] == latest and manifest["device_id"] == "dev-test"
    assert {m["name"] for m in manifest["members"]} == set(names) - {"manifest.json"}

    # Restore into a fresh device: another data dir, the same target.
    fresh, fresh_manager = make_env(tmp_path / "dst", targets=[
        {"name": "local", "type": "local", "path": str(tmp_path / "src" / "backups")}], seed=False)
    restored = fresh_manager.restore(archive, include=["db", "faces"])
    assert restored["ok"] and restored["restored"] == ["db", "faces"]
    src_db, dst_db = settings.db_path, fresh.db_path
    assert table_rows(dst_db, "users") == table_rows(src_db, "users")
    assert table_rows(dst_db, "face_encodings") == table_rows(src_db, "face_encodings")  # embeddings byte for byte
    src_events, dst_events = table_rows(src_db, "events"), table_rows(dst_db, "events")
    # A consistent snapshot: exactly the first N events, identical, none half-written.
    assert 200 <= len(dst_events) <= len(src_events)
    assert dst_events == src_events[: len(dst_events)]
    assert tree_digest(fresh.data_dir / "faces") == tree_digest(settings.data_dir / "faces")
    assert integrity(dst_db) == "ok"
    runs = fresh_manager.store.recent(5)
    assert runs[0]["operation"] == "restore" and runs[0]["result"] == "ok"


def test_encrypted_round_trip_carries_secrets_and_unencrypted_masks_them(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path / "enc", encrypt=True)
    result = manager.create()
    assert result["ok"] and result["name"].endswith(".zip.enc") and result["encrypted"]
    archive = tmp_path / "enc" / "backups" / result["name"]
    assert b"person-" not in archive.read_bytes() and b"manifest" not in archive.read_bytes()
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(archive)
    info = manager.verify(archive)
    assert info["manifest"]["settings_secrets"] == "included"

    # Change the secret, then restore: the archive's real value comes back.
    doc = json.loads(settings.source.read_text())
    doc["mqtt"]["password"] = "changed-later"
    settings.source.write_text(json.dumps(doc))
    manager.restore(archive, include=["settings"])
    assert json.loads(settings.source.read_text())["mqtt"]["password"] == MQTT_SECRET

    plain_settings, plain = make_env(tmp_path / "plain")
    result = plain.create()
    with zipfile.ZipFile(tmp_path / "plain" / "backups" / result["name"]) as zf:
        stored = json.loads(zf.read("settings.json"))
    assert stored["mqtt"]["password"] == "***"
    assert MQTT_SECRET.encode() not in (tmp_path / "plain" / "backups" / result["name"]).read_bytes()
    # Restoring masked settings keeps the device's current secret.
    plain.restore(tmp_path / "plain" / "backups" / result["name"], include=["settings"])
    assert json.loads(plain_settings.source.read_text())["mqtt"]["password"] == MQTT_SECRET
    assert load_settings(plain_settings.source, env={})["mqtt.password"] == MQTT_SECRET


def test_older_backup_is_migrated_forward_and_newer_is_refused(tmp_path: Path) -> None:
    old_settings, old = make_env(tmp_path / "old", migrate_to=5)
    result = old.create(include=["db", "faces"])
    assert result["ok"] and result["schema_version"] == 5
    archive = tmp_path / "old" / "backups" / result["name"]

    settings, manager = make_env(tmp_path / "cur", seed=False)
    restored = manager.restore(archive)
    with Migrator(settings.db_path) as migrator:
        latest = migrator.latest_version
    assert restored["migrated"] == list(range(6, latest + 1))
    assert table_rows(settings.db_path, "users") == table_rows(old_settings.db_path, "users")
    assert table_rows(settings.db_path, "schema_migrations", "version")[-1] == (latest,)

    # A database from a newer facepro: refused before anything changes.
    future_settings, future = make_env(tmp_path / "future")
    import sqlite3
    conn = sqlite3.connect(future_settings.db_path)
    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, '099_future', 'x')")
    conn.commit()
    conn.close()
    newer = future.create(include=["db"])
    before = table_rows(settings.db_path, "users")
    with pytest.raises(BackupError, match="newer than this facepro"):
        manager.restore(tmp_path / "future" / "backups" / newer["name"])
    assert table_rows(settings.db_path, "users") == before
    assert not (settings.data_dir / ".restore").exists()


def test_retention_keeps_n_and_never_the_only_good_backup(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path, keep=2)
    names = [manager.create(include=["db"])["name"] for _ in range(3)]
    on_disk = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert on_disk == names[1:]

    # A newer file that was never verified (say, copied by hand) does not count as good:
    # with keep=1 the newest good one stays too.
    fake = tmp_path / "backups" / "facepro_backup_dev-test_29991231T235959Z.zip"
    fake.write_bytes(b"not a backup")
    removed = manager.prune(keep=1)
    left = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert left == [names[2], fake.name], removed

    # Other devices' archives on a shared target are never touched.
    other = tmp_path / "backups" / "facepro_backup_other-device_20200101T000000Z.zip"
    other.write_bytes(b"x")
    manager.prune(keep=1)
    assert other.exists()

    # No archive known to be good: nothing is deleted at all.
    empty_settings, fresh = make_env(tmp_path / "f", targets=[
        {"name": "local", "type": "local", "path": str(tmp_path / "backups")}], seed=False)
    assert fresh.prune(keep=1) == {"local": []}


def test_jobs_progress_on_the_bus_and_last_status(tmp_path: Path) -> None:
    settings, _ = make_env(tmp_path)
    bus = EventBus()
    seen: list[dict] = []
    bus.subscribe("backup", seen.append)
    manager = BackupManager(settings, "dev-test", bus=bus)
    assert manager.last_status()["last_success_at"] is None
    job_id = manager.start(include=["db", "faces"])
    wait_until(lambda: manager.job(job_id)["state"] != "running", 30, "the backup job", fail=False)
    job = manager.job(job_id)
    assert job["state"] == "ok" and job["progress"] == 1.0 and job["result"]["ok"]
    assert seen[0]["state"] == "running" and seen[-1]["state"] == "ok" and seen[-1]["job"] == job_id
    status = manager.last_status()
    assert status["last_result"] == "ok" and status["last_success_at"] and status["last_error"] is None
    listed = manager.list()
    assert [item["name"] for item in listed] == [job["result"]["name"]]
    assert listed[0]["encrypted"] is False and listed[0]["size"] > 0
    # A bare name from list() is found on the targets (what the MQTT/web callers pass).
    assert manager.verify(listed[0]["name"])["ok"]
    with pytest.raises(BackupError, match="not found on any backup target"):
        manager.verify("facepro_backup_dev-test_20000101T000000Z.zip")

    # A failing target is recorded and reported.
    broken = BackupManager(load_settings(settings.source, env={}), "dev-test")
    broken.settings.data["backup"]["targets"] = [{"name": "usb", "type": "usb", "path": str(tmp_path / "nodrive"),
                                                  "enabled": True, "keep": None}]
    result = broken.create(include=["db"])
    assert not result["ok"] and "does not exist" in result["errors"][0]
    status = broken.last_status()
    assert status["last_result"] == "failed" and "does not exist" in status["last_error"]
    assert status["targets_missing"][0]["name"] == "usb"
    with pytest.raises(BackupError, match="no backup job"):
        manager.job("nope")


def test_cli_create_list_verify_restore_prune_export(tmp_path: Path) -> None:
    """The sprint plan's test, through the real command line: create, then restore, succeed."""
    settings, _ = make_env(tmp_path)
    cfg = settings.source
    r = run_cli(cfg, "backup", "create")
    assert r.returncode == 0, r.stderr
    assert "written to local and verified" in r.stdout
    r = run_cli(cfg, "backup", "list", "--json")
    items = json.loads(r.stdout)
    assert len(items) == 1 and items[0]["target"] == "local"
    name = items[0]["name"]
    r = run_cli(cfg, "backup", "verify", name, "--target", "local")
    assert r.returncode == 0 and "match their checksums" in r.stdout, r.stderr
    r = run_cli(cfg, "backup", "restore", str(tmp_path / "backups" / name))
    assert r.returncode == 2 and "--yes" in r.stderr
    r = run_cli(cfg, "backup", "restore", name, "--target", "local", "--yes")
    assert r.returncode == 0 and "restored db, faces, settings" in r.stdout, r.stderr
    r = run_cli(cfg, "backup", "prune", "--keep", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli(cfg, "backup", "create", "--include", "db,bogus")
    assert r.returncode == 2 and "--include" in r.stderr
    r = run_cli(cfg, "backup", "create", "--target", "nowhere")
    assert r.returncode == 2 and "no backup target named 'nowhere'" in r.stderr
    r = run_cli(cfg, "backup", "verify", str(tmp_path / "missing.zip"))
    assert r.returncode == 1 and "archive not found" in r.stderr
    r = run_cli(cfg, "export", "faces", str(tmp_path / "faces.zip"))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(tmp_path / "faces.zip") as zf:
        people = json.loads(zf.read("people.json"))
        assert len([n for n in zf.namelist() if n.startswith("faces/")]) == 6
    assert people[0]["name"] == "person-0" and people[0]["images"] == ["faces/person-0/0.jpg", "faces/person-0/1.jpg"]
    r = run_cli(cfg, "export", "settings", str(tmp_path / "settings-export.json"))
    exported = json.loads((tmp_path / "settings-export.json").read_text())
    assert r.returncode == 0 and exported["mqtt"]["password"] == "***"
    r = run_cli(cfg, "backup", "status", "--json")
    status = json.loads(r.stdout)
    assert status["last_result"] == "ok" and status["recent"][0]["operation"] in ("prune", "restore", "create")


def test_scheduler_runs_a_due_backup_in_the_service(tmp_path: Path) -> None:
    from edge.backup.scheduler import BackupScheduler
    from edge.schedule import parse_schedule

    settings, manager = make_env(tmp_path)
    manager.schedule = parse_schedule("every 6h")
    scheduler = BackupScheduler(manager, startup_delay_s=0, poll_s=0.1)
    assert scheduler.due()  # never backed up: due now
    scheduler.start()
    try:
        wait_until(lambda: manager.store.last("create", "ok") is not None, 30, "a scheduled backup", fail=False)
    finally:
        scheduler.stop()
    assert manager.store.last("create", "ok") is not None
    assert not scheduler.due()  # the next one is 6 h away
    assert len(list((tmp_path / "backups").iterdir())) == 1
    status = manager.last_status()
    assert status["schedule"] == "every 6h" and status["overdue"] is False and status["next_due_at"]


def test_import_verifies_then_stores_and_delete(tmp_path: Path) -> None:
    src_settings, src = make_env(tmp_path / "a")
    name = src.create(include=["db", "faces"])["name"]
    settings, manager = make_env(tmp_path / "b", seed=False)
    upload = tmp_path / "upload" / name
    upload.parent.mkdir()
    upload.write_bytes((tmp_path / "a" / "backups" / name).read_bytes())
    result = manager.import_archive(upload)
    assert result == {"ok": True, "target": "local", "name": name}
    assert (tmp_path / "b" / "backups" / name).read_bytes() == upload.read_bytes()
    damaged = tmp_path / "upload2" / name
    damaged.parent.mkdir()
    damaged.write_bytes(upload.read_bytes()[:-200])
    with manager.exclusive(), pytest.raises(BackupError, match="already running"):
        manager.delete("local", name)  # a restore may be reading it
    assert (tmp_path / "b" / "backups" / name).exists()
    manager.delete("local", name)
    with pytest.raises(BackupError, match="not a readable backup archive"):
        manager.import_archive(damaged)
    assert not (tmp_path / "b" / "backups" / name).exists()
    with pytest.raises(BackupError, match="no archive named"):
        manager.delete("local", name)
    renamed = tmp_path / "upload" / "my backup.zip"
    upload.rename(renamed)
    assert manager.import_archive(renamed)["name"] == name  # named after its manifest


def test_one_settings_file_gives_each_device_its_own_folder(tmp_path: Path) -> None:
    """Fleet: one image's settings, one shared target, `{device_id}` in subdir."""
    from edge.backup.target_specs import check_target

    shared = tmp_path / "share"
    target = {"name": "nas", "type": "local", "path": str(shared), "subdir": "fleet/{device_id}"}
    for device in ("door-1", "door-2"):
        _, manager = make_env(tmp_path / device, targets=[dict(target)], device_id=device, people=1)
        manager.create()
        listed = manager.list()
        assert [b["name"].startswith(f"facepro_backup_{device}_") for b in listed] == [True]
    assert sorted(p.name for p in (shared / "fleet").iterdir()) == ["door-1", "door-2"]
    for device in ("door-1", "door-2"):
        assert len(list((shared / "fleet" / device).glob("facepro_backup_*.zip"))) == 1
    assert check_target(target, min_free_bytes=1, device_id="door-1")["ok"]
    unknown = check_target(target, min_free_bytes=1, device_id=None)
    assert not unknown["ok"] and "needs the device id" in unknown["detail"]


def test_subdir_with_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"backup": {"targets": [
        {"name": "nas", "type": "local", "path": str(tmp_path), "subdir": "{hostname}"}]}}))
    with pytest.raises(ConfigError, match=r"backup.targets\[0\].subdir: the only placeholder is \{device_id\}"):
        load_settings(path, env={})
