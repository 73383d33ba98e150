DROP TABLE events;
DROP TABLE face_encodings;
DROP TABLE users;
DROP TABLE schema_migrations;
