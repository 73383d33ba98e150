-- Events get an id that is unique across restores and devices (published as the event's "id";
-- the integer row id stays internal), and the detector score of the face apart from the
-- similarity that "confidence" holds for a recognised face. Rows written by code that does
-- not set event_uid (older tools, tests) get a random UUID v4 from the trigger.
ALTER TABLE events ADD COLUMN event_uid TEXT;
ALTER TABLE events ADD COLUMN detector_score REAL;
UPDATE events SET event_uid = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
    || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1)
    || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)));
CREATE UNIQUE INDEX idx_events_uid ON events(event_uid);
CREATE TRIGGER events_uid_default AFTER INSERT ON events WHEN NEW.event_uid IS NULL
BEGIN
    UPDATE events SET event_uid = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
        || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1)
        || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))
    WHERE id = NEW.id;
END;
