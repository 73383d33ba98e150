-- Who gets told about what: one row per channel (mqtt, webhook, ...), optionally per user.
-- event_types: JSON array of event types ('face_recognized', 'face_unknown', ...); NULL = all.
-- quiet hours: local time 'HH:MM'; both NULL = never quiet; start > end wraps midnight.
CREATE TABLE notification_settings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    min_confidence REAL NOT NULL DEFAULT 0.0 CHECK (min_confidence BETWEEN 0.0 AND 1.0),
    event_types TEXT CHECK (event_types IS NULL OR json_valid(event_types)),
    quiet_start TEXT CHECK (quiet_start IS NULL OR quiet_start GLOB '[0-2][0-9]:[0-5][0-9]'),
    quiet_end TEXT CHECK (quiet_end IS NULL OR quiet_end GLOB '[0-2][0-9]:[0-5][0-9]'),
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
-- One general rule per channel, and at most one rule per user per channel.
CREATE UNIQUE INDEX idx_notification_channel_user
    ON notification_settings(channel, COALESCE(user_id, 0));
