-- MQTT outbox: an event is published from its row and marked only after the broker's PUBACK.
-- published_at NULL = not yet published; skipped_at set = left unpublished by the outbox bound
-- (mqtt.outbox_max_age_s / mqtt.outbox_max_count); the row itself stays.
ALTER TABLE events ADD COLUMN published_at DATETIME;
ALTER TABLE events ADD COLUMN skipped_at DATETIME;
CREATE INDEX idx_events_unpublished ON events(id) WHERE published_at IS NULL AND skipped_at IS NULL;
CREATE INDEX idx_events_skipped ON events(id) WHERE skipped_at IS NOT NULL AND published_at IS NULL;
