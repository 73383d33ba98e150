"""`facepro run` boot order, logging, version, and the installed wheel."""
from __future__ import annotations

import io
import json
import logging
import re
import signal
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

from edge import secrets
from edge.db.migrator import Migrator
from edge.logs import setup_logging
from tests.conftest import REPO, subprocess_env
from tests.support.cli import run_cli
from tests.support.service import start_service, wait_for_line

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: .+$")


def test_version_via_module_and_console_script() -> None:
    out = run_cli(None, "version")
    assert out.returncode == 0 and re.match(r"^facepro \d+\.\d+", out.stdout)
    script = Path(sys.executable).parent / "facepro"
    if script.exists():
        out2 = subprocess.run([str(script), "version"], capture_output=True, text=True, timeout=60)
        assert out2.stdout == out.stdout


def test_run_migrates_first_then_runs_until_sigterm(write_settings, data_dir: Path) -> None:
    settings = write_settings({"mqtt": {"enabled": False, "password": "never-log-this-pw"}})
    proc = start_service(settings)
    try:
        lines = wait_for_line(proc, "facepro running")
        with Migrator(data_dir / "facepro.db") as m:
            assert m.current_version() == m.latest_version
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    log = "".join(lines) + rest
    assert "never-log-this-pw" not in log
    migrated = next(i for i, line in enumerate(lines) if "migrated to version" in line)
    running = next(i for i, line in enumerate(lines) if "facepro running" in line)
    assert migrated < running
    for line in log.splitlines():
        if line.strip():
            assert LOG_LINE.match(line), f"not a one-line log record: {line!r}"


def test_run_refuses_to_boot_on_a_newer_database_and_leaves_it_alone(write_settings, data_dir: Path) -> None:
    db = data_dir / "facepro.db"
    with Migrator(db) as m:
        m.migrate()
        m.conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    conn = sqlite3.connect(db)
    before = list(conn.iterdump())
    conn.close()
    proc = run_cli(write_settings(), "run")
    assert proc.returncode == 1
    assert "schema version 999 is newer than this code" in proc.stderr
    assert "facepro running" not in proc.stderr
    conn = sqlite3.connect(db)
    assert list(conn.iterdump()) == before
    conn.close()


def test_run_refuses_to_boot_on_checksum_drift(write_settings, data_dir: Path) -> None:
    db = data_dir / "facepro.db"
    with Migrator(db) as m:
        m.migrate()
        m.conn.execute("UPDATE schema_migrations SET checksum = 'abc' WHERE version = 2")
    proc = run_cli(write_settings(), "run")
    assert proc.returncode == 1
    assert "002_add_gait_embeddings.sql: checksum drift" in proc.stderr


def test_migrate_commands(write_settings, data_dir: Path) -> None:
    settings = str(write_settings())

    def facepro(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(settings, *args)

    status = json.loads(facepro("migrate", "status", "--json").stdout)
    assert status["current_version"] == 0 and len(status["pending"]) == status["latest_version"]
    assert facepro("migrate", "up", "--to", "2").returncode == 0
    status = json.loads(facepro("migrate", "status", "--json").stdout)
    assert status["current_version"] == 2
    assert [a["version"] for a in status["applied"]] == [1, 2]
    assert all(a["applied_at"].endswith("Z") for a in status["applied"])
    text = facepro("migrate", "status").stdout
    assert "current version: 002" in text and "003  add_insightface_columns" in text
    assert facepro("migrate", "up").returncode == 0
    verify = facepro("migrate", "verify")
    assert verify.returncode == 0 and "ok:" in verify.stdout
    down = facepro("migrate", "down", "--to", "1")
    assert down.returncode == 0 and "schema version 001" in down.stdout
    bad = facepro("migrate", "up", "--to", "99")
    assert bad.returncode == 1 and "--to 99" in bad.stderr
    conn = sqlite3.connect(data_dir / "facepro.db")
    conn.execute("UPDATE schema_migrations SET checksum = 'abc' WHERE version = 1")
    conn.commit()
    conn.close()
    verify = facepro("migrate", "verify")
    assert verify.returncode == 1 and "checksum drift" in verify.stdout


def test_log_lines_mask_registered_secrets() -> None:
    stream = io.StringIO()
    setup_logging("debug", stream=stream)
    secrets.register("p4ssw0rd-xyz")
    try:
        logging.getLogger("edge.test").info("connecting with password=%s\nsecond line", "p4ssw0rd-xyz")
    finally:
        setup_logging("info")
    out = stream.getvalue()
    assert "p4ssw0rd-xyz" not in out and "***" in out
    assert out.count("\n") == 1  # one line per record
    assert LOG_LINE.match(out.strip())


def test_installed_wheel_finds_migrations_and_defaults_from_any_directory(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir),
                            str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheel_dir.glob("facepro_edge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "edge/migrations/001_initial_schema.sql" in names
    assert "edge/migrations/001_initial_schema.rollback.sql" in names
    assert "edge/defaults/settings.json" in names
    assert "edge/web/templates/dashboard.html" in names and "edge/web/static/app.js" in names
    assert not any(n.startswith("edge/defaults/demo") for n in names)
    # Every subpackage of the source tree is in the wheel.
    for init in (REPO / "edge").rglob("__init__.py"):
        rel = init.relative_to(REPO).as_posix()
        assert rel in names, f"{rel} missing from the wheel: add it to [tool.setuptools] packages"

    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                              str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = subprocess_env(PYTHONPATH=str(target), FACEPRO_DATA_DIR=str(tmp_path / "data"))
    where = subprocess.run([sys.executable, "-c", "import edge; print(edge.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    script = target / "bin" / "facepro"
    assert script.exists()
    up = subprocess.run([sys.executable, str(script), "migrate", "up"], cwd=elsewhere, env=env,
                        capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    status = subprocess.run([sys.executable, str(script), "migrate", "status", "--json"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["pending"] == []
    version = subprocess.run([sys.executable, str(script), "version"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == "facepro 0.1.0"


def test_the_event_producer_stops_before_the_parts_that_consume_its_events() -> None:
    from types import SimpleNamespace

    from edge.service import stop_order

    pipeline = SimpleNamespace(name="pipeline", produces_events=True)
    telemetry, mqtt, web = (SimpleNamespace(name=n) for n in ("telemetry", "mqtt", "web"))
    assert [c.name for c in stop_order([pipeline, telemetry, mqtt, web])] == ["pipeline", "web", "mqtt", "telemetry"]


def test_unusable_data_dir_or_database_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = subprocess_env(FACEPRO_DATA_DIR=str(blocker / "data"))
    proc = run_cli(None, "run", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"facepro: error: {blocker / 'data'}")
    assert "Traceback" not in proc.stderr

    data = tmp_path / "data"
    data.mkdir()
    (data / "facepro.db").write_bytes(b"this is not a database, and must stay as it is")
    env = subprocess_env(FACEPRO_DATA_DIR=str(data))
    for args in (["run"], ["migrate", "status"]):
        proc = run_cli(None, *args, env=env)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1] == (
            f"facepro: error: database {data / 'facepro.db'}: file is not a database")
        assert "Traceback" not in proc.stderr
    assert (data / "facepro.db").read_bytes() == b"this is not a database, and must stay as it is"
