"""A restore does not trust the restored data (issue 13, item 2): paths read from the database
stay inside their directory, masked secrets never follow a changed endpoint, and
security-relevant settings changes are listed and must be accepted, exactly."""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from edge.backup.errors import BackupError
from edge.backup.restore_settings import camera_endpoint, digest, source_hosts
from edge.config import load_settings
from edge.db.events import EventStore
from edge.events import Retention
from edge.secrets import mask_url
from tests.support.backup_env import MQTT_SECRET, make_env
from tests.support.cli import run_cli

SMB_SECRET = "smb-secret-value-2"


def test_restored_event_paths_outside_snapshots_are_ignored_by_retention(tmp_path: Path, caplog) -> None:
    victims = tmp_path / "victims"
    victims.mkdir()
    absolute, climbing, sneaky = victims / "absolute.txt", victims / "climbing.txt", victims / "sneaky.txt"
    for victim in (absolute, climbing, sneaky):
        victim.write_text("not facepro's")
    source_settings, source = make_env(tmp_path / "attacker", people=1)
    conn = sqlite3.connect(source_settings.db_path)
    old = "2001-01-01 00:00:00"
    rows = [str(absolute), "../../victims/climbing.txt", "snapshots/../../../victims/sneaky.txt",
            "snapshots/2001-01-01/real.jpg", "faces/person-0/0.jpg"]
    for rel in rows:
        conn.execute("INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name, "
                     "created_at) VALUES ('face_unknown', 'unknown', 0.5, ?, 'cam', ?)", (rel, old))
    conn.commit()
    conn.close()
    archive = tmp_path / "attacker" / "backups" / source.create(include=["db"])["name"]

    settings, manager = make_env(tmp_path / "device", people=1)
    real = settings.data_dir / "snapshots" / "2001-01-01" / "real.jpg"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"jpeg")
    face = settings.data_dir / "faces" / "person-0" / "0.jpg"
    assert face.exists()
    assert manager.restore(archive, include=["db"])["ok"]

    caplog.set_level(logging.WARNING, logger="edge.events")
    with EventStore(settings.db_path) as store:
        by_age = Retention(store, settings.data_dir, retention_days=1, min_free_mb=0).prune_age(time.time())
    assert by_age["events"] == len(rows) and by_age["snapshots"] == 1
    assert absolute.exists() and climbing.exists() and sneaky.exists() and face.exists() and not real.exists()
    ignored = [r for r in caplog.records if "ignoring the snapshot path" in r.getMessage()]
    assert len(ignored) == 4

    # Pruning for space reads the same column: the same refusal.
    conn = sqlite3.connect(settings.db_path)
    conn.executemany("INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name) "
                     "VALUES ('face_unknown', 'unknown', 0.5, ?, 'cam')", [(str(absolute),), ("../x/../../victims/climbing.txt",)])
    conn.commit()
    conn.close()
    with EventStore(settings.db_path) as store:
        Retention(store, settings.data_dir, retention_days=0, min_free_mb=1e7).ensure_space()
    assert absolute.exists() and climbing.exists()


DOOR_SECRET = "door-url-secret-3"   # inside the door camera's URL
YARD_SECRET = "yard-cam-secret-4"   # the yard camera's separate password
DOOR = "rtsp://viewer:{}@cam.local:554/stream1"


def _cameras(door: dict[str, Any] | None = None, yard: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [{"name": "door", "source": DOOR.format(DOOR_SECRET), **(door or {})},
            {"name": "yard", "source": "rtsp://yard.local:8554/live", "username": "viewer",
             "password": YARD_SECRET, **(yard or {})}]


def _pair(tmp_path: Path, archive_side: dict[str, Any], smb: dict[str, Any] | None = None,
          cameras: dict[str, dict[str, Any]] | None = None):
    """An archive (plain, so its secrets are masked) whose settings differ from the device's
    by ``archive_side``, ``smb`` and ``cameras`` (by camera name); the device has the real
    MQTT, SMB and camera secrets."""
    def target(extra: dict[str, Any]) -> list[dict[str, Any]]:
        smb_target = {"name": "nas", "type": "smb", "server": "nas.local", "share": "backups",
                      "username": "facepro", "password": SMB_SECRET, **extra}
        return [{"name": "local", "type": "local", "path": str(tmp_path / "a" / "backups")}, smb_target]

    mqtt = {"host": "broker.local", "port": 1883, "username": "facepro"}
    _src_settings, src = make_env(tmp_path / "a", targets=target(smb or {}), people=1,
                                  extra={"mqtt": {**mqtt, **archive_side.get("mqtt", {})},
                                         "web": archive_side.get("web", {}), "cameras": _cameras(**(cameras or {}))})
    archive = tmp_path / "a" / "backups" / src.create(target="local", include=["settings"])["name"]
    settings, manager = make_env(tmp_path / "b", targets=[
        {"name": "local", "type": "local", "path": str(tmp_path / "b" / "backups")}] + target({})[1:],
        people=1, extra={"mqtt": mqtt, "cameras": _cameras()})
    return archive, settings, manager


CASES = [  # (what the archive changes, MQTT password kept?, SMB password kept?)
    ({}, {}, True, True),
    ({"mqtt": {"host": "evil.example"}}, {}, False, True),
    ({"mqtt": {"port": 8883}}, {}, False, True),
    ({"mqtt": {"username": "someone"}}, {}, False, True),
    ({}, {"server": "evil.example"}, True, False),
    ({}, {"username": "admin"}, True, False),
    ({}, {"port": 4450}, True, False),
    ({}, {"share": "other"}, True, True),  # another share on the same server, same user: same credentials
]
# (the archive's cameras, door URL password kept?, yard password kept?); the archive was made
# on a device whose own camera passwords were other ones (masked in the archive all the same).
CAMERA_CASES = [
    ({"door": {"source": DOOR.format("theirs").replace("stream1", "stream2")}}, True, True),  # path only
    ({"door": {"source": "rtsp://viewer:theirs@evil.example:554/stream1"}}, False, True),
    ({"door": {"source": "rtsp://viewer:theirs@cam.local:8554/stream1"}}, False, True),
    ({"door": {"source": "rtsp://viewer:theirs@cam.local/stream1"}}, False, True),  # port left out
    ({"door": {"source": "rtsps://viewer:theirs@cam.local:554/stream1"}}, False, True),
    ({"door": {"source": "rtsp://admin:theirs@cam.local:554/stream1"}}, False, True),
    ({"door": {"source": DOOR.format("theirs"), "username": "admin"}}, False, True),
    ({"yard": {"source": "rtsp://evil.example:8554/live", "password": "theirs"}}, True, False),
    ({"yard": {"source": "rtsp://yard.local:9554/live", "password": "theirs"}}, True, False),
    ({"yard": {"source": "http://yard.local:8554/live", "password": "theirs"}}, True, False),
    ({"yard": {"username": "admin", "password": "theirs"}}, True, False),
    ({"yard": {"source": "rtsp://admin@yard.local:8554/live", "username": None, "password": "theirs"}}, True, False),
    ({"yard": {"source": "rtsp://yard.local:8554/other", "password": "theirs"}}, True, True),  # path only
]
ALL_CASES = [(a, smb, {}, m, s, True, True) for a, smb, m, s in CASES] + \
            [({}, {}, cams, True, True, door, yard) for cams, door, yard in CAMERA_CASES]


@pytest.mark.parametrize("archive_side,smb,cameras,mqtt_kept,smb_kept,door_kept,yard_kept", ALL_CASES)
def test_masked_secret_is_kept_only_for_an_unchanged_endpoint(tmp_path: Path, archive_side, smb, cameras,
                                                              mqtt_kept: bool, smb_kept: bool, door_kept: bool,
                                                              yard_kept: bool) -> None:
    archive, settings, manager = _pair(tmp_path, archive_side, smb, cameras)
    result = manager.restore(archive, include=["settings"], accept_security="all")
    doc = json.loads(settings.source.read_text())
    assert doc["mqtt"]["password"] == (MQTT_SECRET if mqtt_kept else None)
    assert doc["backup"]["targets"][1]["password"] == (SMB_SECRET if smb_kept else None)
    door = mask_url(_cameras(**cameras)[0]["source"])  # as the archive holds it
    assert doc["cameras"][0]["source"] == door.replace(":***@", f":{DOOR_SECRET}@" if door_kept else "@")
    assert doc["cameras"][1]["password"] == (YARD_SECRET if yard_kept else None)
    cleared = ([] if mqtt_kept else ["mqtt.password"]) + ([] if door_kept else ["cameras[0].source (its password)"]) \
        + ([] if yard_kept else ["cameras[1].password"]) + ([] if smb_kept else ["backup.targets[1].password"])
    assert result["secrets_cleared"] == cleared
    restored = load_settings(settings.source, env={})
    assert restored["mqtt.password"] == (MQTT_SECRET if mqtt_kept else None)
    assert "***" not in json.dumps(restored["cameras"])  # never a literal mask as a password


def test_a_camera_password_with_a_raw_at_sign_is_read_like_the_masking_reads_it() -> None:
    """The endpoint a restore compares is the host after the password's last '@', as edge.secrets
    masks it: a device password such as door@2024 is not taken for the host."""
    source = "rtsp://viewer:door@2024@cam.local:554/stream1"
    assert source_hosts(source) == (("rtsp", "cam.local", "554"),)
    assert camera_endpoint({"source": source}) == camera_endpoint({"source": mask_url(source)})


def test_security_changes_are_listed_and_refused_unless_accepted_exactly(tmp_path: Path) -> None:
    archive, settings, manager = _pair(tmp_path, {"mqtt": {"host": "evil.example", "tls": {"enabled": False}},
                                                  "web": {"public_read": True}}, {"server": "evil.example"})
    before = settings.source.read_text()
    with pytest.raises(BackupError) as refused:
        manager.restore(archive, include=["settings"])
    message = str(refused.value)
    assert refused.value.exit_code == 2 and "restore refused (not confirmed)" in message
    for part in ('web.public_read (reading the status page without logging in): false -> true',
                 'mqtt.host (the MQTT broker): "broker.local" -> "evil.example"',
                 "backup.targets 'nas'.server", "backup.targets 'local'.path"):
        assert part in message, message
    assert MQTT_SECRET not in message and SMB_SECRET not in message
    assert settings.source.read_text() == before
    assert not (settings.data_dir / "backups" / "pre-restore").exists()  # refused before anything ran

    preview = manager.preview_restore(str(archive))
    assert len(preview["security_changes"]) == 4 and preview["digest"] == digest(preview["security_changes"])
    assert preview["secrets_cleared"] == ["mqtt.password", "backup.targets[1].password"]
    with pytest.raises(BackupError, match=r"differ from the changes confirmed"):
        manager.restore(archive, include=["settings"], accept_security=digest(preview["security_changes"][:2]))
    assert settings.source.read_text() == before
    result = manager.restore(archive, include=["settings"], accept_security=preview["digest"])
    assert result["security_changes"] == preview["security_changes"]
    assert load_settings(settings.source, env={})["web.public_read"] is True


def test_cli_restore_refuses_security_changes_without_the_flag(tmp_path: Path) -> None:
    archive, settings, _manager = _pair(tmp_path, {"web": {"public_read": True}})
    refused = run_cli(settings.source, "backup", "restore", str(archive), "--include", "settings", "--yes")
    assert refused.returncode == 2 and "web.public_read" in refused.stderr and "--accept-security-changes" in \
        refused.stderr, refused.stderr
    assert json.loads(settings.source.read_text())["web"].get("public_read") is not True
    done = run_cli(settings.source, "backup", "restore", str(archive), "--include", "settings", "--yes",
                   "--accept-security-changes")
    assert done.returncode == 0, done.stderr
    assert "security-relevant change accepted: web.public_read" in done.stdout


def test_security_changes_name_camera_hosts_cookies_and_tls_files(tmp_path: Path) -> None:
    tls = {"cert_file": str(tmp_path / "client.crt"), "key_file": str(tmp_path / "client.key"),
           "ca_file": str(tmp_path / "ca.crt")}
    archive, settings, manager = _pair(
        tmp_path, {"mqtt": {"tls": tls}, "web": {"secure_cookies": True}},
        cameras={"door": {"source": "rtsp://viewer:theirs@evil.example:554/stream1?token=t0ken"},
                 "yard": {"source": "rtsp://yard.local:8554/other", "password": None,
                          "password_file": "/etc/shadow"}})
    preview = manager.preview_restore(str(archive))
    local_path = "backup.targets 'local'.path"  # each side of the pair has its own directory
    assert [line for line in preview["security_changes"] if not line.startswith(local_path)] == [
        f'mqtt.tls.ca_file (the broker\'s CA): null -> {json.dumps(tls["ca_file"])}',
        f'mqtt.tls.cert_file (the client certificate shown to the broker): null -> {json.dumps(tls["cert_file"])}',
        f'mqtt.tls.key_file (the client key shown to the broker): null -> {json.dumps(tls["key_file"])}',
        "web.secure_cookies (the Secure flag on the session cookie): false -> true",
        "cameras 'door'.source (the camera host its user and password go to): "
        "rtsp://cam.local:554 -> rtsp://evil.example:554",
        "cameras 'yard'.password_file (the file its password is read from): null -> \"/etc/shadow\"",
    ], preview["security_changes"]
    assert not any(s in line for line in preview["security_changes"]
                   for s in (DOOR_SECRET, YARD_SECRET, "theirs", "t0ken", "stream1"))
    before = settings.source.read_text()
    with pytest.raises(BackupError, match="cameras 'door'.source"):
        manager.restore(archive, include=["settings"])
    assert settings.source.read_text() == before
    result = manager.restore(archive, include=["settings"], accept_security=preview["digest"])
    assert result["security_changes"] == preview["security_changes"]

    # A camera's path or a camera without a URL is not a security change.
    archive, _settings, manager = _pair(tmp_path / "quiet", {}, cameras={
        "door": {"source": DOOR.format("theirs").replace("stream1", "stream2")}})
    assert [line for line in manager.preview_restore(str(archive))["security_changes"]
            if not line.startswith(local_path)] == []
