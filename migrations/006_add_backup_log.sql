-- One row per backup or restore attempt: what, where, how it went.
CREATE TABLE backup_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation TEXT NOT NULL CHECK (operation IN ('create', 'restore', 'prune', 'verify')),
    target TEXT,
    archive TEXT,
    result TEXT NOT NULL CHECK (result IN ('running', 'ok', 'failed')),
    size_bytes INTEGER,
    duration_s REAL,
    error TEXT,
    includes TEXT,
    started_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at DATETIME
);
CREATE INDEX idx_backup_runs_started ON backup_runs(started_at);
