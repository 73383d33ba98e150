"""deploy/systemd/facepro.service passes `systemd-analyze verify` and keeps its promises."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UNIT = REPO / "deploy" / "systemd" / "facepro.service"
EXEC = "ExecStart=/opt/facepro/venv/bin/facepro "


def unit_settings() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists; /opt/facepro is not installed on a CI
    # machine, so a copy is checked with only that path pointed at an existing interpreter.
    text = UNIT.read_text()
    assert text.count(EXEC) == 1
    copy = tmp_path / "facepro.service"
    copy.write_text(text.replace(EXEC, f"ExecStart={sys.executable} -m edge "))
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "facepro.service" in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: an unknown key and a missing binary are reported."""
    copy = tmp_path / "facepro.service"
    copy.write_text(UNIT.read_text().replace("NoNewPrivileges=yes", "NoNewPrivileges=yes\nNoSuchKey=1"))
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert "NoSuchKey" in proc.stdout + proc.stderr
    assert proc.returncode != 0  # the real ExecStart binary does not exist here


def test_unit_supervision_and_sandbox_settings() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"] and int(s["WatchdogSec"][0]) > 0
    assert s["StartLimitIntervalSec"] and s["StartLimitBurst"]
    assert s["User"] == ["facepro"] and "video" in s["SupplementaryGroups"][0]
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"] and s["PrivateTmp"] == ["yes"]
    writable = " ".join(s["ReadWritePaths"])
    for path in ("/var/lib/facepro", "/media", "/mnt", "/run/media"):
        assert path in writable
    assert "--config /etc/facepro/settings.json run" in s["ExecStart"][0]
