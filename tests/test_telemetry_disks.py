"""Disk figures and the low_disk rule on real mounts: a small tmpfs as a USB drive, an unplugged one."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from edge.config import load_settings
from edge.context import ServiceContext
from edge.telemetry.component import Telemetry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def usb_drive(tmp_path: Path):
    mount = tmp_path / "usb"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_backup_targets_free_space_and_low_disk_alert(write_settings, usb_drive: Path, tmp_path: Path) -> None:
    unplugged = tmp_path / "unplugged"
    unplugged.mkdir()
    settings = load_settings(write_settings({
        "telemetry": {"history_retention_days": 0},
        "alerts": {"low_disk": {"enabled": True, "threshold": 1.0, "duration_s": 2, "hysteresis": 0.5}},
        "backup": {"targets": [
            {"name": "usb", "type": "usb", "path": str(usb_drive)},
            {"name": "stick", "type": "usb", "path": str(unplugged)},
            {"name": "nas", "type": "smb", "server": "127.0.0.1", "share": "backups"},
        ]},
    }), env={})
    ctx = ServiceContext(settings=settings, device_id="test-device")
    telemetry = Telemetry(ctx, persist=False)
    published: list[dict] = []
    ctx.bus.subscribe("alert", published.append)

    snap = telemetry.sample(now=1000.0)
    disks = {d["name"]: d for d in snap["disks"]}
    assert set(disks) == {"data", "backup:usb", "backup:stick"}  # an SMB share has no local path
    assert disks["backup:usb"]["ok"] and disks["backup:usb"]["mounted"] is True
    assert disks["backup:usb"]["total_bytes"] == 2 * 1024 * 1024
    assert disks["backup:stick"] == {"name": "backup:stick", "kind": "usb", "path": str(unplugged),
                                     "ok": False, "mounted": False, "error": "not mounted"}

    # fill the drive to under 1 MB free: raised after 2 s, once
    (usb_drive / "archive.part").write_bytes(b"\0" * (1536 * 1024))
    for i in range(1, 6):
        telemetry.sample(now=1000.0 + i)
    raised = [p for p in published if p["name"] == "low_disk"]
    assert [(p["subject"], p["state"]) for p in raised] == [("backup:usb", "raised")]
    assert raised[0]["value"] < 1.0
    # freeing space past threshold + hysteresis clears it
    (usb_drive / "archive.part").unlink()
    for i in range(6, 10):
        telemetry.sample(now=1000.0 + i)
    assert [(p["subject"], p["state"]) for p in published if p["name"] == "low_disk"] == [
        ("backup:usb", "raised"), ("backup:usb", "cleared")]
    assert not any(a["name"] == "low_disk" for a in telemetry.alerts.active())
