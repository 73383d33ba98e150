-- One row per backup attempt per target, restore, verification or prune: what, where, how it went.
-- A 'create' row with result 'ok' means the archive was written and read back with matching
-- checksums: retention never deletes the last such archive of a target.
CREATE TABLE backup_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation TEXT NOT NULL CHECK (operation IN ('create', 'restore', 'prune', 'verify', 'import', 'delete')),
    target TEXT,
    archive TEXT,
    result TEXT NOT NULL CHECK (result IN ('running', 'ok', 'failed')),
    size_bytes INTEGER,
    sha256 TEXT,
    duration_s REAL,
    error TEXT,
    includes TEXT,
    started_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at DATETIME
);
CREATE INDEX idx_backup_runs_started ON backup_runs(started_at);
CREATE INDEX idx_backup_runs_archive ON backup_runs(target, archive);
