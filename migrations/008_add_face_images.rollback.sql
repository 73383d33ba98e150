ALTER TABLE face_encodings DROP COLUMN image_path;
