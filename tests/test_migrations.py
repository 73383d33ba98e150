"""The migration guarantees of the foundation issue, each with a test that fails if broken."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from edge.db import connect
from edge.db.migrator import MigrationError, Migrator, discover, split_statements
from tests.conftest import REPO, subprocess_env


def schema_of(path: Path | sqlite3.Connection) -> list[tuple]:
    conn = path if isinstance(path, sqlite3.Connection) else sqlite3.connect(path)
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()
    if not isinstance(path, sqlite3.Connection):
        conn.close()
    return [tuple(r) for r in rows]


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    lines = list(conn.iterdump())
    conn.close()
    return lines


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(textwrap.dedent(sql))
    return directory


BASE = {
    "001_base.sql": """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL UNIQUE,
            name TEXT NOT NULL, applied_at DATETIME DEFAULT CURRENT_TIMESTAMP, checksum TEXT);
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT);
        INSERT INTO people (name) VALUES ('a; b'), ('c');
    """,
    "001_base.rollback.sql": "DROP TABLE people; DROP TABLE schema_migrations;",
}

SLOW_ROWS = 1_500_000
SLOW = {
    "002_slow.sql": f"""
        CREATE TABLE big (x INTEGER);
        INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {SLOW_ROWS})
            SELECT x FROM c;
        CREATE INDEX idx_big ON big(x);
    """,
    "002_slow.rollback.sql": "DROP TABLE big;",
}


# -- the sprint plan's own test plan, on ':memory:' -----------------------------------

def test_memory_database_starts_at_version_zero() -> None:
    runner = Migrator(":memory:")
    assert runner.current_version() == 0


def test_memory_database_migrates_above_zero() -> None:
    runner = Migrator(":memory:")
    runner.migrate()
    assert runner.current_version() > 0
    assert runner.current_version() == runner.latest_version


def test_migrating_twice_changes_nothing() -> None:
    runner = Migrator(":memory:")
    runner.migrate()
    v1, schema1 = runner.current_version(), schema_of(runner.conn)
    assert runner.migrate() == []
    assert runner.current_version() == v1
    assert schema_of(runner.conn) == schema1


# -- the shipped migrations ------------------------------------------------------------

def test_shipped_migrations_have_contiguous_versions_and_rollbacks() -> None:
    migrations = discover(REPO / "migrations")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert [m.name for m in migrations[:4]] == [
        "initial_schema", "add_gait_embeddings", "add_insightface_columns", "add_notification_settings"]
    for m in migrations:
        assert m.rollback_path.name == f"{m.stem}.rollback.sql"


def test_shipped_schema_has_the_sprint_plan_tables(tmp_path: Path) -> None:
    with Migrator(tmp_path / "db.sqlite") as m:
        m.migrate()
        tables = {r[0] for r in m.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"schema_migrations", "users", "face_encodings", "events", "gait_embeddings",
                "reid_embeddings", "notification_settings"} <= tables
        cols = {r[1]: r for r in m.conn.execute("PRAGMA table_info(face_encodings)")}
        assert cols["embedding_dim"][4] == "128"
        assert "backend" in cols
        sm = [r[1] for r in m.conn.execute("PRAGMA table_info(schema_migrations)")]
        assert sm == ["id", "version", "name", "applied_at", "checksum"]


def test_down_to_zero_and_up_again_gives_the_same_schema(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with Migrator(db) as m:
        m.migrate()
        first = schema_of(m.conn)
        undone = m.rollback(to=0)
        assert undone == list(range(m.latest_version, 0, -1))
        assert m.current_version() == 0
        assert schema_of(m.conn) == []
        m.migrate()
        assert schema_of(m.conn) == first


def test_every_intermediate_version_rolls_back_cleanly(tmp_path: Path) -> None:
    with Migrator(tmp_path / "db.sqlite") as m:
        schemas = {0: schema_of(m.conn)}
        for version in range(1, m.latest_version + 1):
            m.migrate(to=version)
            schemas[version] = schema_of(m.conn)
        for version in range(m.latest_version - 1, -1, -1):
            m.rollback(to=version)
            assert schema_of(m.conn) == schemas[version], f"rollback to {version} differs"


def test_notification_settings_constraints(tmp_path: Path) -> None:
    with Migrator(tmp_path / "db.sqlite") as m:
        m.migrate()
        conn = m.conn
        conn.execute("INSERT INTO users (name) VALUES ('ana')")
        conn.execute("INSERT INTO notification_settings (channel, min_confidence, event_types, quiet_start, quiet_end)"
                     " VALUES ('mqtt', 0.5, '[\"face_recognized\"]', '22:00', '06:30')")
        conn.execute("INSERT INTO notification_settings (channel, user_id) VALUES ('mqtt', 1)")
        with pytest.raises(sqlite3.IntegrityError):  # a second general rule for the channel
            conn.execute("INSERT INTO notification_settings (channel) VALUES ('mqtt')")
        with pytest.raises(sqlite3.IntegrityError):  # quiet hours need both ends
            conn.execute("INSERT INTO notification_settings (channel, quiet_start) VALUES ('webhook', '22:00')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO notification_settings (channel, event_types) VALUES ('x', 'not json')")
        conn.execute("DELETE FROM users WHERE name = 'ana'")  # per-user rule goes with the user
        assert conn.execute("SELECT COUNT(*) FROM notification_settings").fetchone()[0] == 1


# -- one transaction per migration -----------------------------------------------------

def test_failing_statement_leaves_database_as_before_and_names_file_and_statement(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **BASE,
        "002_broken.sql": """
            CREATE TABLE first_ok (x INTEGER);
            INSERT INTO people (name) VALUES ('added');
            INSERT INTO no_such_table VALUES (1);
            CREATE TABLE never (x INTEGER);
        """,
        "002_broken.rollback.sql": "DROP TABLE first_ok;",
    })
    db = tmp_path / "db.sqlite"
    with Migrator(db, migrations) as m:
        m.migrate(to=1)
    before = dump(db)
    with Migrator(db, migrations) as m:
        with pytest.raises(MigrationError) as info:
            m.migrate()
        assert m.current_version() == 1
    message = str(info.value)
    assert "002_broken.sql" in message and "statement 3" in message and "no_such_table" in message
    assert dump(db) == before


def test_statements_are_not_split_inside_strings_or_triggers() -> None:
    sql = """
        CREATE TABLE t (x TEXT);
        INSERT INTO t VALUES ('one; two');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = x || ';'; END;
        -- a trailing comment
    """
    statements = split_statements(sql)
    assert len(statements) == 3
    assert statements[2].startswith("CREATE TRIGGER") and statements[2].endswith("END;")


def test_transaction_control_in_a_migration_file_is_refused(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **BASE,
        "002_commit.sql": "CREATE TABLE x (a); COMMIT;",
        "002_commit.rollback.sql": "DROP TABLE x;",
    })
    with Migrator(":memory:", migrations) as m:
        with pytest.raises(MigrationError, match="002_commit.sql: transaction control"):
            m.migrate()
        assert m.current_version() == 1


def test_migration_leaving_foreign_key_violations_is_rolled_back(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **BASE,
        "002_fk.sql": """
            CREATE TABLE pets (id INTEGER PRIMARY KEY, owner INTEGER REFERENCES people(id));
            INSERT INTO pets (owner) VALUES (999);
        """,
        "002_fk.rollback.sql": "DROP TABLE pets;",
    })
    with Migrator(tmp_path / "db.sqlite", migrations) as m:
        with pytest.raises(MigrationError, match="002_fk.sql: leaves 1 foreign key violation"):
            m.migrate()
        assert m.current_version() == 1
        assert m.conn.execute("SELECT name FROM sqlite_master WHERE name='pets'").fetchone() is None
        assert m.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


# -- SIGKILL mid-migration and concurrent migrators -----------------------------------

RUNNER = """
import logging, sys, time
from pathlib import Path
from edge.db.migrator import Migrator
from edge.logs import setup_logging
setup_logging("info")
go = Path(sys.argv[3]) if len(sys.argv) > 3 else None
while go is not None and not go.exists():
    time.sleep(0.005)
with Migrator(sys.argv[1], sys.argv[2]) as m:
    applied = m.migrate()
print("applied", applied, flush=True)
"""


def run_migrator(db: Path, migrations: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(db), str(migrations), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=subprocess_env())


def test_sigkill_mid_migration_leaves_previous_version_and_next_boot_applies(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {**BASE, **SLOW})
    db = tmp_path / "db.sqlite"
    with Migrator(db, migrations) as m:
        m.migrate(to=1)
    proc = run_migrator(db, migrations)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "applying migration 002_slow.sql" in line:
            break
    time.sleep(0.3)
    assert proc.poll() is None, "the migration finished before it could be killed; make it slower"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    conn = connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='big'").fetchone() is None
    conn.close()

    with Migrator(db, migrations) as m:
        assert m.migrate() == [2]
        assert m.conn.execute("SELECT COUNT(*) FROM big").fetchone()[0] == SLOW_ROWS


def test_two_processes_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {**BASE, **SLOW})
    db = tmp_path / "db.sqlite"
    go = tmp_path / "go"
    procs = [run_migrator(db, migrations, str(go)) for _ in range(2)]
    time.sleep(1.0)  # both interpreters up and waiting
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    # Each version was applied by exactly one of the two (they may take turns).
    applied = [int(v) for out, _ in outputs
               for v in out.strip().removeprefix("applied [").rstrip("]").split(",") if v.strip()]
    assert sorted(applied) == [1, 2], outputs
    conn = connect(db)
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [1, 2]
    assert conn.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM big").fetchone()[0] == SLOW_ROWS
    conn.close()


# -- refusing to run -------------------------------------------------------------------

def test_checksum_drift_refuses_and_changes_nothing(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **BASE, "002_more.sql": "CREATE TABLE more (x);", "002_more.rollback.sql": "DROP TABLE more;"})
    db = tmp_path / "db.sqlite"
    with Migrator(db, migrations) as m:
        m.migrate(to=1)
    (migrations / "001_base.sql").write_text(BASE["001_base.sql"] + "\n-- edited later\n")
    before = dump(db)
    with Migrator(db, migrations) as m:
        assert any("checksum drift" in p for p in m.problems())
        with pytest.raises(MigrationError, match=r"001_base.sql: checksum drift"):
            m.migrate()
        with pytest.raises(MigrationError, match="checksum drift"):
            m.rollback(to=0)
    assert dump(db) == before


def test_gap_in_versions_refuses(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **BASE, "003_late.sql": "CREATE TABLE late (x);", "003_late.rollback.sql": "DROP TABLE late;"})
    with pytest.raises(MigrationError, match="gap in migration versions: 002 is missing before 003_late.sql"):
        Migrator(":memory:", migrations).migrate()


def test_duplicate_version_refuses(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **BASE,
        "001_again.sql": "CREATE TABLE again (x);", "001_again.rollback.sql": "DROP TABLE again;"})
    with pytest.raises(MigrationError, match="duplicate migration version 001"):
        Migrator(":memory:", migrations).migrate()


def test_missing_rollback_file_refuses(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {**BASE, "002_norollback.sql": "CREATE TABLE x (a);"})
    with pytest.raises(MigrationError, match="002_norollback.sql: missing rollback file"):
        Migrator(":memory:", migrations).migrate()


def test_sprint_plan_rollback_naming_is_refused(tmp_path: Path) -> None:
    """NNN_rollback.sql would be taken for a migration named 'rollback'; we refuse such a stray."""
    migrations = write_migrations(tmp_path / "m", {**BASE, "001_rollback.sql": "DROP TABLE people;"})
    with pytest.raises(MigrationError, match="duplicate migration version 001"):
        Migrator(":memory:", migrations).migrate()


def test_database_newer_than_code_refuses_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with Migrator(db) as m:
        m.migrate()
        latest = m.latest_version
        m.conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'from_the_future')",
                       (latest + 1,))
    before = dump(db)
    with Migrator(db) as m:
        with pytest.raises(MigrationError, match=f"schema version {latest + 1} is newer than this code"):
            m.migrate()
    assert dump(db) == before


# -- snapshots and checks --------------------------------------------------------------

def test_pending_migrations_on_existing_database_write_a_snapshot_first(tmp_path: Path) -> None:
    db = tmp_path / "data" / "facepro.db"
    snapshots = tmp_path / "data" / "backups" / "pre-migrate"
    with Migrator(db) as m:
        m.migrate(to=3)
        m.conn.execute("INSERT INTO users (name) VALUES ('kept in the snapshot')")
    with Migrator(db, snapshot_dir=snapshots, keep_snapshots=2) as m:
        m.migrate()
    files = sorted(snapshots.glob("*.db"))
    assert len(files) == 1 and "v003" in files[0].name
    snap = sqlite3.connect(files[0])
    assert snap.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 3
    assert snap.execute("SELECT name FROM users").fetchall() == [("kept in the snapshot",)]
    assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snap.close()
    # Only the last few are kept.
    with Migrator(db, snapshot_dir=snapshots, keep_snapshots=2) as m:
        for _ in range(3):
            m.rollback(to=3)
            m.migrate()
    assert len(list(snapshots.glob("*.db"))) == 2
    assert not list(snapshots.glob("*.partial"))


def test_fresh_database_needs_no_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "facepro.db"
    with Migrator(db) as m:
        m.migrate()
    assert not (tmp_path / "backups").exists()


def test_connection_policy(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db", busy_timeout_ms=1234)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
    assert conn.isolation_level is None  # explicit transactions only
    conn.close()


def test_existing_connection_keeps_memory_database_alive() -> None:
    conn = connect(":memory:")
    m = Migrator(conn)
    m.migrate()
    m.close()  # does not close a connection it was given
    assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == m.latest_version


def _open_new_database(path: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        connect(path).close()
    except Exception as exc:  # reported to the test, which fails on any
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_database_together_all_get_wal(tmp_path: Path) -> None:
    """Switching a new file to WAL from several processes at once can fail at once with
    'database is locked' (no busy handler); connect() retries like any other lock."""
    import multiprocessing

    errors: Any = multiprocessing.Queue()
    for i in range(15):
        path = str(tmp_path / f"boot{i}.db")
        barrier = multiprocessing.Barrier(3)
        procs = [multiprocessing.Process(target=_open_new_database, args=(path, barrier, errors)) for _ in range(3)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
            assert proc.exitcode == 0
        conn = connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
