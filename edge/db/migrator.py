"""Schema migrations: ``NNN_name.sql`` with ``NNN_name.rollback.sql``, applied at boot.

Guarantees (each has a test in tests/test_migrations.py):

* a migration and its ``schema_migrations`` row commit in one explicit transaction;
  statements run one by one (never ``executescript``, which commits implicitly), so a
  failing statement leaves the database exactly as before and the error names the file,
  the statement number and its text;
* a process killed mid-migration leaves the previous version (the transaction never
  committed) and the next run applies it cleanly;
* ``BEGIN IMMEDIATE`` serialises concurrent migrators; each re-reads the applied set
  inside its transaction, so nothing is applied twice;
* checksum drift, gaps, duplicates and a database newer than the code refuse to run
  before anything is changed;
* before pending migrations touch an existing database, a consistent snapshot is written
  with SQLite's online backup API.
"""
from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from edge.db.connection import connect, online_backup
from edge.errors import FaceproError

log = logging.getLogger(__name__)

MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9][a-z0-9_]*)\.sql$")
ROLLBACK_RE = re.compile(r"^(\d{3})_([a-z0-9][a-z0-9_]*)\.rollback\.sql$")
TRANSACTION_RE = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
SNAPSHOT_PREFIX = "pre-migrate-"


class MigrationError(FaceproError):
    """A migration problem; the message says which file and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    rollback_path: Path
    checksum: str

    @property
    def stem(self) -> str:
        return f"{self.version:03d}_{self.name}"

    def statements(self) -> list[str]:
        return split_statements(self.path.read_text(encoding="utf-8"), self.path)

    def rollback_statements(self) -> list[str]:
        return split_statements(self.rollback_path.read_text(encoding="utf-8"), self.rollback_path)


def default_migrations_dir() -> Path:
    return Path(str(resources.files("edge.migrations")))


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_statements(sql: str, path: Path | str = "<sql>") -> list[str]:
    """Split SQL text into complete statements (triggers and quoted ``;`` included)."""
    statements: list[str] = []
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statement = buffer.strip()
                if TRANSACTION_RE.match(_strip_comments(statement)):
                    raise MigrationError(
                        f"{path}: transaction control is not allowed in a migration "
                        f"(the runner owns the transaction): {_shorten(statement)}"
                    )
                statements.append(statement)
            buffer = ""
    if _has_code(buffer[:-1]):
        raise MigrationError(f"{path}: incomplete final statement: {_shorten(buffer[:-1])}")
    return statements


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return "\n".join(line.split("--", 1)[0] if line.lstrip().startswith("--") else line
                     for line in sql.splitlines())


def _has_code(sql: str) -> bool:
    return bool(_strip_comments(sql).replace(";", "").strip())


def _shorten(statement: str, limit: int = 160) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def discover(directory: Path) -> list[Migration]:
    """Read the migration files in ``directory``; refuse gaps, duplicates and strays."""
    if not directory.is_dir():
        raise MigrationError(f"{directory}: migrations directory not found")
    forward: dict[int, list[Path]] = {}
    rollbacks: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not path.name.endswith(".sql"):
            continue
        if m := ROLLBACK_RE.match(path.name):
            rollbacks[f"{m.group(1)}_{m.group(2)}"] = path
        elif m := MIGRATION_RE.match(path.name):
            forward.setdefault(int(m.group(1)), []).append(path)
        else:
            raise MigrationError(
                f"{path}: not a migration file name (expected NNN_name.sql or NNN_name.rollback.sql)")
    migrations: list[Migration] = []
    for version in sorted(forward):
        paths = forward[version]
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise MigrationError(f"{directory}: duplicate migration version {version:03d}: {names}")
        path = paths[0]
        stem = path.name[: -len(".sql")]
        rollback = rollbacks.pop(stem, None)
        if rollback is None:
            raise MigrationError(f"{path}: missing rollback file {stem}.rollback.sql")
        migrations.append(Migration(version, stem[4:], path, rollback, file_checksum(path)))
    if rollbacks:
        stray = next(iter(rollbacks.values()))
        raise MigrationError(f"{stray}: rollback file without a matching migration")
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{directory}: gap in migration versions: {expected:03d} is missing "
                f"before {migration.path.name}")
    return migrations


class Migrator:
    """Applies and rolls back migrations on one database through one kept connection.

    ``db`` is a path, ``":memory:"`` or an open connection (kept open; the in-memory
    database lives as long as this object).
    """

    def __init__(
        self,
        db: str | Path | sqlite3.Connection,
        migrations_dir: str | Path | None = None,
        *,
        snapshot_dir: str | Path | None = None,
        keep_snapshots: int = 5,
        busy_timeout_ms: int = 5000,
        lock_wait_s: float = 300.0,
    ) -> None:
        self.migrations_dir = Path(migrations_dir) if migrations_dir else default_migrations_dir()
        self.keep_snapshots = keep_snapshots
        self.lock_wait_s = lock_wait_s
        self._owns_conn = not isinstance(db, sqlite3.Connection)
        if isinstance(db, sqlite3.Connection):
            self.conn = db
            self.db_path: Path | None = None
        else:
            self.db_path = None if str(db) == ":memory:" else Path(db)
            self.conn = connect(str(db), busy_timeout_ms=busy_timeout_ms)
        if snapshot_dir is not None:
            self.snapshot_dir: Path | None = Path(snapshot_dir)
        elif self.db_path is not None:
            self.snapshot_dir = self.db_path.parent / "backups" / "pre-migrate"
        else:
            self.snapshot_dir = None
        self._migrations: list[Migration] | None = None

    # -- reading ---------------------------------------------------------------------

    @property
    def migrations(self) -> list[Migration]:
        if self._migrations is None:
            self._migrations = discover(self.migrations_dir)
        return self._migrations

    @property
    def latest_version(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    def _has_table(self) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone()
        return row is not None

    def applied(self) -> list[dict[str, Any]]:
        if not self._has_table():
            return []
        rows = self.conn.execute(
            "SELECT version, name, applied_at, checksum FROM schema_migrations ORDER BY version").fetchall()
        return [dict(row) for row in rows]

    def current_version(self) -> int:
        if not self._has_table():
            return 0
        row = self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def pending(self) -> list[Migration]:
        done = {row["version"] for row in self.applied()}
        return [m for m in self.migrations if m.version not in done]

    def problems(self) -> list[str]:
        """Everything that makes it unsafe to run: drift, unknown versions, newer database."""
        by_version = {m.version: m for m in self.migrations}
        issues: list[str] = []
        for row in self.applied():
            version = row["version"]
            migration = by_version.get(version)
            if migration is None:
                if version > self.latest_version:
                    issues.append(
                        f"database schema version {version} is newer than this code "
                        f"(latest migration {self.latest_version:03d}); upgrade facepro or restore a backup")
                else:
                    issues.append(f"applied migration {version:03d} ({row['name']}) has no file in "
                                  f"{self.migrations_dir}")
            elif row["checksum"] and row["checksum"] != migration.checksum:
                issues.append(
                    f"{migration.path}: checksum drift: the file changed after it was applied "
                    f"(applied {row['checksum'][:12]}, file {migration.checksum[:12]}); "
                    f"restore the original file or write a new migration")
        applied_versions = sorted(row["version"] for row in self.applied())
        known = [v for v in applied_versions if v in by_version]
        if known and known != list(range(1, len(known) + 1)):
            issues.append(f"applied versions {known} are not contiguous from 001")
        return issues

    def check(self) -> None:
        issues = self.problems()
        if issues:
            raise MigrationError(issues[0] + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""))

    def status(self) -> dict[str, Any]:
        return {
            "database": str(self.db_path) if self.db_path else ":memory:",
            "current_version": self.current_version(),
            "latest_version": self.latest_version,
            "applied": self.applied(),
            "pending": [{"version": m.version, "name": m.name} for m in self.pending()],
            "problems": self.problems(),
        }

    # -- writing ---------------------------------------------------------------------

    def migrate(self, to: int | None = None) -> list[int]:
        """Apply pending migrations up to ``to`` (default: latest). Returns versions applied."""
        self.check()
        target = self.latest_version if to is None else to
        if target > self.latest_version or target < 0:
            raise MigrationError(f"--to {target}: no such version (latest is {self.latest_version:03d})")
        todo = [m for m in self.pending() if m.version <= target]
        if not todo:
            return []
        self._snapshot_before_change(f"v{self.current_version():03d}")
        applied: list[int] = []
        for migration in todo:
            if self._run(migration, forward=True):
                applied.append(migration.version)
        self._post_checks()
        return applied

    up = migrate

    def rollback(self, to: int) -> list[int]:
        """Roll back applied migrations above ``to``, newest first. Returns versions undone."""
        self.check()
        if to < 0 or to > self.current_version():
            raise MigrationError(f"--to {to}: must be between 0 and the current version {self.current_version()}")
        by_version = {m.version: m for m in self.migrations}
        todo = [by_version[row["version"]] for row in reversed(self.applied()) if row["version"] > to]
        if not todo:
            return []
        self._snapshot_before_change(f"v{self.current_version():03d}")
        undone: list[int] = []
        for migration in todo:
            if self._run(migration, forward=False):
                undone.append(migration.version)
        self._post_checks()
        return undone

    down = rollback

    def _begin_immediate(self) -> None:
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise MigrationError(
                        f"database is locked by another process for over {self.lock_wait_s:.0f} s; "
                        "is another facepro migrating?") from exc
                log.info("waiting for another process to finish migrating")

    def _run(self, migration: Migration, *, forward: bool) -> bool:
        path = migration.path if forward else migration.rollback_path
        statements = migration.statements() if forward else migration.rollback_statements()
        conn = self.conn
        # foreign_keys cannot change inside a transaction; off while tables are rebuilt,
        # with a foreign_key_check before commit instead.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            self._begin_immediate()
            try:
                is_applied = self._has_table() and conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone()
                if bool(is_applied) == forward:
                    conn.rollback()  # another process got here first
                    log.info("migration %s already %s by another process", migration.stem,
                             "applied" if forward else "rolled back")
                    return False
                log.info("%s migration %s", "applying" if forward else "rolling back", path.name)
                if not forward:
                    conn.execute("DELETE FROM schema_migrations WHERE version = ?", (migration.version,))
                for number, statement in enumerate(statements, start=1):
                    try:
                        conn.execute(statement)
                    except sqlite3.Error as exc:
                        raise MigrationError(
                            f"{path}: statement {number} failed: {exc}: {_shorten(statement)}") from exc
                if forward:
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES (?, ?, ?, ?)",
                        (migration.version, migration.stem, _now(), migration.checksum))
                violations = conn.execute("PRAGMA foreign_key_check").fetchall()
                if violations:
                    first = violations[0]
                    raise MigrationError(
                        f"{path}: leaves {len(violations)} foreign key violation(s), first in table "
                        f"{first[0]} rowid {first[1]} referencing {first[2]}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
        finally:
            conn.execute("PRAGMA foreign_keys = ON")
        return True

    def _post_checks(self) -> None:
        result = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise MigrationError(f"quick_check after migration failed: {result}")
        violations = self.conn.execute("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise MigrationError(f"foreign_key_check after migration found {len(violations)} violation(s)")

    def _snapshot_before_change(self, label: str) -> Path | None:
        if self.snapshot_dir is None or self.current_version() == 0:
            return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = self.db_path.stem if self.db_path else "db"
        dest = self.snapshot_dir / f"{SNAPSHOT_PREFIX}{stamp}-{name}-{label}.db"
        online_backup(self.conn, dest)
        log.info("pre-migrate snapshot written to %s", dest)
        snapshots = sorted(self.snapshot_dir.glob(f"{SNAPSHOT_PREFIX}*.db"))
        for old in snapshots[: max(0, len(snapshots) - self.keep_snapshots)]:
            old.unlink(missing_ok=True)
        return dest

    def close(self) -> None:
        if self._owns_conn:
            self.conn.close()

    def __enter__(self) -> Migrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
