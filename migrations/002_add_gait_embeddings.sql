-- Gait and person re-identification embeddings (float32 BLOBs), per enrolled user.
CREATE TABLE gait_embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    confidence REAL DEFAULT 1.0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_gait_embeddings_user ON gait_embeddings(user_id);

CREATE TABLE reid_embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    confidence REAL DEFAULT 1.0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_reid_embeddings_user ON reid_embeddings(user_id);
