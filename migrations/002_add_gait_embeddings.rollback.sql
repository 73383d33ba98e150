DROP TABLE reid_embeddings;
DROP TABLE gait_embeddings;
