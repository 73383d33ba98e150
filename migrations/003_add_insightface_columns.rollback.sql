ALTER TABLE face_encodings DROP COLUMN backend;
ALTER TABLE face_encodings DROP COLUMN embedding_dim;
