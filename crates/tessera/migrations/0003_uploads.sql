-- Uploads: videos sent to Tessera (or straight to the bucket) through a
-- signed upload policy, then finalized (probed) before runs may use them.
-- status: pending (URL issued) → uploaded (Tessera received the file) →
-- finalized (probed, within limits). Unfinalized rows and their objects are
-- removed once the retention period has passed since their URL expired.
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    object_key   TEXT NOT NULL,
    filename     TEXT,
    content_type TEXT,
    status       TEXT NOT NULL,
    size_bytes   BIGINT,
    duration_ms  BIGINT,
    width        BIGINT,
    height       BIGINT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    uploaded_at  BIGINT,
    finalized_at BIGINT,
    -- Set while a finalize_upload call checks the file (a lease: a call that
    -- died lets the next one in once it passed).
    finalizing_until BIGINT,
    -- When the sweeper removed the strays beside a finalized upload's file
    -- (a form posted again to the bucket before its URL expired).
    tidied_at BIGINT
);
CREATE INDEX uploads_by_user ON uploads (user_id, id);
CREATE INDEX uploads_unfinalized ON uploads (status, expires_at);
