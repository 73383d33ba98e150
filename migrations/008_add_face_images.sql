-- Enrolment keeps the aligned 112x112 crop each embedding came from (path relative to
-- <data_dir>/faces), so backups carry it and the status page can show it.
ALTER TABLE face_encodings ADD COLUMN image_path TEXT;
