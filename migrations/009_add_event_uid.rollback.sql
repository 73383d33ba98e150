DROP TRIGGER events_uid_default;
DROP INDEX idx_events_uid;
ALTER TABLE events DROP COLUMN detector_score;
ALTER TABLE events DROP COLUMN event_uid;
