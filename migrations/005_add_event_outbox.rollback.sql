DROP INDEX idx_events_skipped;
DROP INDEX idx_events_unpublished;
ALTER TABLE events DROP COLUMN skipped_at;
ALTER TABLE events DROP COLUMN published_at;
