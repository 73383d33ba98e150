-- One-minute aggregates of performance metrics, so charts survive a restart,
-- and the alert transitions (raised/cleared) with their values.
CREATE TABLE metrics_minutely (
    minute INTEGER NOT NULL,          -- unix time of the minute's start
    metric TEXT NOT NULL,             -- e.g. 'fps.processed', 'stage.detect.p95_s'
    label TEXT NOT NULL DEFAULT '',   -- e.g. camera name; '' when none
    avg REAL,
    min REAL,
    max REAL,
    count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, metric, label)
) WITHOUT ROWID;

CREATE TABLE alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('raised', 'cleared')),
    value REAL,
    message TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_alert_history_created ON alert_history(created_at);
