-- One-minute aggregates of performance metrics, so charts survive a restart,
-- and the alert transitions (raised/cleared) with their values.
CREATE TABLE metrics_minutely (
    minute INTEGER NOT NULL,          -- unix time (UTC) of the minute's start
    metric TEXT NOT NULL,             -- e.g. 'fps', 'cpu_percent', 'stage.p95_s'
    label TEXT NOT NULL DEFAULT '',   -- camera or stage name; '' when none
    avg REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    count INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (minute, metric, label)
) WITHOUT ROWID;

CREATE TABLE alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert TEXT NOT NULL,              -- rule name, e.g. 'low_fps'
    subject TEXT NOT NULL DEFAULT '', -- camera, stage, sensor or disk; '' when none
    state TEXT NOT NULL CHECK (state IN ('raised', 'cleared')),
    value REAL,
    message TEXT,
    created_at TEXT NOT NULL          -- ISO 8601 UTC with 'Z' (the transition's time)
);
CREATE INDEX idx_alert_history_created ON alert_history(created_at);
