-- Dashboard sessions: the cookie holds a random token, the table its SHA-256.
-- A session belongs to the API key that opened it and ends with that key.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    api_key_id TEXT NOT NULL REFERENCES api_keys(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- What an attempt sent (secrets masked before storing) and what came back.
ALTER TABLE webhook_attempts ADD COLUMN request_headers TEXT;
ALTER TABLE webhook_attempts ADD COLUMN response_headers TEXT;
ALTER TABLE webhook_attempts ADD COLUMN reason TEXT;

-- The dashboard's "last 24 hours" counts.
CREATE INDEX runs_by_user_time ON runs (user_id, created_at);
CREATE INDEX deliveries_by_user_time ON webhook_deliveries (user_id, created_at);
CREATE INDEX triggers_by_user ON triggers (user_id, id);
