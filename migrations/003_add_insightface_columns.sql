-- Which model produced an embedding, and its length: a pack with another dimension
-- must refuse to match against old embeddings.
ALTER TABLE face_encodings ADD COLUMN embedding_dim INTEGER NOT NULL DEFAULT 128;
ALTER TABLE face_encodings ADD COLUMN backend TEXT NOT NULL DEFAULT 'dlib';
