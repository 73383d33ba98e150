-- Tokens for the machine API (/api/v1/, /metrics): `facepro web token create NAME`.
-- Only the SHA-256 of a token is kept; the token itself is printed once and never stored.
-- A revoked token keeps its row (so a later use is logged by name); a name can be reused once
-- its token is revoked, hence the partial unique index.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at DATETIME,
    last_used_at DATETIME,
    revoked_at DATETIME
);
CREATE UNIQUE INDEX idx_api_tokens_active_name ON api_tokens(name) WHERE revoked_at IS NULL;
