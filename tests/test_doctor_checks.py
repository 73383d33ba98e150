"""`facepro doctor` against a good device and deliberately broken ones (real models, clip,
Mosquitto, SQLite files and directories; nothing mocked)."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge import doctor
from tests.conftest import CLIP, MODELS_DIR
from tests.support.cli import run_cli
from tests.support.procs import free_port
from tests.support.service import start_service


def run_doctor(settings: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = run_cli(settings, "doctor", "--json", "--timeout", "5", *extra, log_level="warning", timeout=120)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"doctor printed no JSON (rc {proc.returncode}): {proc.stdout}\n{proc.stderr}") from None
    return proc.returncode, report


def by_name(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in report["checks"]}


def migrate(settings: Path) -> None:
    run_cli(settings, "migrate", "up", check=True)


def test_good_device_passes(tmp_path: Path, write_settings, mosquitto) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    settings = write_settings({
        "cameras": [{"name": "door", "source": str(CLIP)}],
        "mqtt": {"enabled": True, "host": mosquitto.host, "port": mosquitto.port},
        "backup": {"targets": [{"name": "local", "type": "local", "path": str(backups)}]},
    })
    settings.chmod(0o640)
    migrate(settings)
    rc, report = run_doctor(settings)
    checks = by_name(report)
    assert rc == 0, report
    assert report["ok"] is True and report["summary"]["FAIL"] == 0
    for name in ("settings", "clock", "disk", "database", "onnxruntime", "model pack", "camera door", "mqtt",
                 "backup local"):
        assert checks[name]["status"] == "PASS", checks[name]
    assert checks["device id"]["status"] == "PASS" and "test-device" in checks["device id"]["detail"]
    assert "schema version" in checks["database"]["detail"] and "integrity ok" in checks["database"]["detail"]
    assert "scrfd_2.5g_bnkps.onnx" in checks["model pack"]["detail"]
    assert "dim 128" in checks["model pack"]["detail"]
    assert "640x360" in checks["camera door"]["detail"]
    assert checks["gpu telemetry"]["status"] in ("PASS", "INFO", "WARN")


def test_broken_device_reports_each_failure_with_its_fix(tmp_path: Path, write_settings) -> None:
    plain_dir = tmp_path / "not-a-drive"
    plain_dir.mkdir()
    settings = write_settings({
        "paths": {"data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "no-models")},
        "cameras": [{"name": "gone", "source": str(tmp_path / "missing.mp4")},
                    {"name": "ipcam", "source": f"rtsp://127.0.0.1:{free_port()}/stream"}],
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": free_port()},
        "backup": {"targets": [{"name": "usb", "type": "usb", "path": str(plain_dir)}]},
    })
    rc, report = run_doctor(settings)
    checks = by_name(report)
    assert rc == 1
    assert report["ok"] is False
    expectations = {
        "model pack": ("no-models", "deploy/install.sh --models"),
        "camera gone": ("missing.mp4", "must exist"),
        "camera ipcam": ("127.0.0.1", "reachable"),
        "mqtt": ("127.0.0.1", "broker runs"),
        "backup usb": ("not-a-drive", "mount point"),
    }
    for name, (in_detail, in_fix) in expectations.items():
        check = checks[name]
        assert check["status"] == "FAIL", check
        assert in_detail in check["detail"], check
        assert in_fix in check["fix"], check
    # the database does not exist yet: a warning that the first start creates it, not a failure
    assert checks["database"]["status"] == "WARN"


def test_table_output_shows_fix_lines_and_exit_1(tmp_path: Path, write_settings) -> None:
    settings = write_settings({"paths": {"data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "none")}})
    proc = run_cli(settings, "doctor", log_level="warning", timeout=120)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    model_line = next(i for i, line in enumerate(lines) if line.startswith("model pack"))
    assert "FAIL" in lines[model_line]
    assert lines[model_line + 1].strip().startswith("fix: install a model pack")
    assert "NOT READY" in lines[-1]


def test_bad_settings_file_is_a_fail_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "settings.json"
    bad.write_text('{"mqtt": {"port": "x"}}')
    rc, report = run_doctor(bad)
    assert rc == 1
    check = by_name(report)["settings"]
    assert check["status"] == "FAIL" and "mqtt.port" in check["detail"] and "config check" in check["fix"]


def test_corrupt_and_outdated_database(tmp_path: Path, write_settings, data_dir: Path) -> None:
    settings_path = write_settings()
    run_cli(settings_path, "migrate", "up", "--to", "3", check=True)
    from edge.config import load_settings

    settings = load_settings(settings_path, env={})
    check = doctor.check_database(settings)
    assert check.status == "WARN" and "pending" in check.detail and "migrate up" in check.fix
    (data_dir / "facepro.db-wal").unlink(missing_ok=True)
    (data_dir / "facepro.db-shm").unlink(missing_ok=True)
    (data_dir / "facepro.db").write_bytes(b"this is not a database" * 100)
    check = doctor.check_database(settings)
    assert check.status == "FAIL" and "restore" in check.fix


def test_clock_before_2020_fails() -> None:
    check = doctor.check_clock(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc))
    assert check.status == "FAIL" and "NTP" in check.detail and "timedatectl" in check.fix
    assert doctor.check_clock(dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)).status == "PASS"


def test_model_pack_with_tampered_manifest_fails(tmp_path: Path, write_settings) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    for name in ("scrfd_2.5g_bnkps.onnx", "mobilefacenet.onnx"):
        os.symlink(MODELS_DIR / name, pack / name)
    (pack / "SHA256SUMS").write_text("0" * 64 + "  mobilefacenet.onnx\n")
    from edge.config import load_settings

    settings = load_settings(write_settings({"paths": {"models_dir": str(pack)}}), env={})
    check = doctor.check_model_pack(settings)
    assert check.status == "FAIL" and "SHA-256" in check.detail


def test_world_readable_settings_is_a_warning(write_settings) -> None:
    path = write_settings()
    path.chmod(0o644)
    check, settings = doctor.check_settings(str(path), env={})
    assert settings is not None and check.status == "WARN" and "chmod 0640" in check.fix


def test_running_service_vouches_for_a_camera_it_holds(tmp_path: Path, write_settings, data_dir: Path) -> None:
    """A USB camera opens once: while the service holds it, doctor's own open fails. Doctor then
    asks the running service (its /api/health) and passes a device camera that is online there;
    a file or URL that doctor cannot open fails whatever the service says."""
    import time
    import urllib.error
    import urllib.request

    from tests.support.procs import wait_for_port

    port = free_port()
    missing = str(tmp_path / "missing.mp4")
    service_settings = write_settings({
        "web": {"host": "127.0.0.1", "port": port},
        "cameras": [{"name": "door", "source": str(CLIP), "loop": True}, {"name": "gone", "source": missing}],
    }, name="service.json")
    proc = start_service(service_settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 60
        reasons: list[str] = []
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
                reasons = []
            except urllib.error.HTTPError as exc:
                reasons = json.loads(exc.read())["reasons"]
            if reasons == ["camera gone is offline"]:
                break
            time.sleep(0.3)
        assert reasons == ["camera gone is offline"]
        # doctor's view: "door" is a V4L2 device it cannot open (as if the service held it)
        doctor_settings = write_settings({
            "web": {"host": "127.0.0.1", "port": port},
            "cameras": [{"name": "door", "source": "/dev/video63"}, {"name": "gone", "source": "/dev/video62"}],
        }, name="doctor.json")
        rc, report = run_doctor(doctor_settings)
        checks = by_name(report)
        assert checks["camera door"]["status"] == "PASS"
        assert "online in the running service" in checks["camera door"]["detail"]
        assert checks["camera gone"]["status"] == "FAIL" and "v4l2-ctl" in checks["camera gone"]["fix"]
        # the same name as a file doctor cannot open: no vouching
        file_settings = write_settings({"web": {"host": "127.0.0.1", "port": port},
                                        "cameras": [{"name": "door", "source": missing}]}, name="file.json")
        assert by_name(run_doctor(file_settings)[1])["camera door"]["status"] == "FAIL"
        assert checks["service"]["status"] == "WARN" and "camera gone is offline" in checks["service"]["detail"]
        assert rc == 1
    finally:
        proc.terminate()
        proc.wait(30)


def test_service_not_running_is_a_warning(tmp_path: Path, write_settings) -> None:
    settings = write_settings({"web": {"host": "127.0.0.1", "port": free_port()}})
    from edge.config import load_settings

    loaded = load_settings(settings, env={})
    check = doctor.check_service(loaded, doctor.service_health(loaded))
    assert check.status == "WARN" and "systemctl start facepro" in check.fix


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs (a USB drive stand-in) needs root")
def test_usb_target_mounted_passes_and_a_full_one_fails(tmp_path: Path, write_settings) -> None:
    from edge.config import load_settings

    roomy, small = tmp_path / "roomy", tmp_path / "small"
    mounted = []
    try:
        for path, size in ((roomy, "256m"), (small, "1m")):
            path.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
            mounted.append(path)
        settings = load_settings(write_settings(), env={})
        need = doctor.backup_room_needed(settings)
        good = doctor.check_backup_target({"name": "usb", "type": "usb", "path": str(roomy)}, need)
        assert good.status == "PASS", good
        full = doctor.check_backup_target({"name": "usb", "type": "usb", "path": str(small)}, need)
        assert full.status == "FAIL" and "free" in full.detail and "backup prune --target usb" in full.fix, full
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=False)
