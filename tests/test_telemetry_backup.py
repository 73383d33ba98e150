"""backup_failed with the real backup manager: a USB target that is not plugged in, then is."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from edge.config import load_settings
from edge.context import ServiceContext
from edge.db.migrate import migrate_database
from edge.telemetry.component import Telemetry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def test_failed_backup_raises_and_a_good_one_clears(write_settings, tmp_path: Path) -> None:
    from edge.backup.manager import BackupManager

    drive = tmp_path / "usb"
    drive.mkdir()
    settings = load_settings(write_settings({
        "telemetry": {"history_retention_days": 0},
        "backup": {"schedule": None, "include": ["db", "settings"],
                   "targets": [{"name": "usb", "type": "usb", "path": str(drive)}]},
    }), env={})
    migrate_database(settings)
    ctx = ServiceContext(settings=settings, device_id="test-device")
    ctx.backups = BackupManager(settings, ctx.device_id, bus=ctx.bus, metrics=ctx.metrics)
    published: list[dict] = []
    ctx.bus.subscribe("alert", lambda p: published.append(p) if p["name"].startswith("backup") else None)
    telemetry = Telemetry(ctx, persist=False)
    telemetry.open_store()
    try:
        telemetry.sample()
        assert published == [] and telemetry.snapshot()["backup"]["failed"] is False

        result = ctx.backups.create()  # the drive is not mounted: nothing can be written
        assert not result["ok"]
        ctx.backups = BackupManager(settings, ctx.device_id)  # the manager caches its status for 5 s
        snap = telemetry.sample()
        assert snap["backup"]["failed"] is True and snap["backup"]["overdue_s"] is None  # no schedule
        assert [(p["name"], p["state"]) for p in published] == [("backup_failed", "raised")]
        assert any(a["name"] == "backup_failed" for a in telemetry.alerts.active())

        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(drive)], check=True)
        try:
            assert ctx.backups.create()["ok"]
        finally:
            subprocess.run(["umount", str(drive)], check=False)
        ctx.backups = BackupManager(settings, ctx.device_id)
        telemetry.sample()
        assert [(p["name"], p["state"]) for p in published] == [("backup_failed", "raised"),
                                                                 ("backup_failed", "cleared")]
        history = telemetry.alerts.history()
        assert [(h["name"], h["state"]) for h in history] == [("backup_failed", "cleared"),
                                                              ("backup_failed", "raised")]
    finally:
        telemetry.stop()
