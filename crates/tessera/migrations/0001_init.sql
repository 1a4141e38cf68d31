-- Tessera schema, version 1, for SQLite and PostgreSQL alike (BIGINT has
-- INTEGER affinity in SQLite). Times are Unix milliseconds; ids are UUID text.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id                     TEXT PRIMARY KEY,
    created_at             BIGINT NOT NULL,
    webhook_secret         TEXT,
    signing_key            TEXT,
    previous_signing_key   TEXT,
    previous_valid_until   BIGINT
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    description TEXT,
    graph       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX agents_by_user ON agents (user_id, id);

CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    agent_id       TEXT NOT NULL REFERENCES agents(id),
    user_id        TEXT NOT NULL REFERENCES users(id),
    status         TEXT NOT NULL,
    -- Input sources in request order; one job per source unless multi_input.
    sources        TEXT NOT NULL,
    multi_input    BIGINT NOT NULL DEFAULT 0,
    callback_url   TEXT,
    graph          TEXT NOT NULL,
    triggered_by   TEXT NOT NULL,
    inputs         TEXT NOT NULL DEFAULT '[]',
    outputs        TEXT NOT NULL DEFAULT '[]',
    errors         TEXT NOT NULL DEFAULT '[]',
    status_message TEXT,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    -- 1 for the first attempt; each resume adds one.
    attempt        BIGINT NOT NULL DEFAULT 1,
    cancel_requested_at BIGINT,
    -- The trigger that started this run, if any.
    trigger_id     TEXT,
    lease_owner    TEXT,
    lease_until    BIGINT
);
CREATE INDEX runs_by_user ON runs (user_id, id);
CREATE INDEX runs_by_agent ON runs (agent_id, id);
CREATE INDEX runs_by_trigger ON runs (trigger_id, id) WHERE trigger_id IS NOT NULL;

-- Schedules and YouTube channel watches of agents.
CREATE TABLE triggers (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    agent_id      TEXT NOT NULL REFERENCES agents(id),
    kind          TEXT NOT NULL,
    -- Kind-specific settings as JSON (schedule: cron, zone, inputs, params).
    config        TEXT NOT NULL,
    callback_url  TEXT,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    next_run_at   BIGINT,
    last_fired_at BIGINT,
    last_poll_at  BIGINT,
    last_error    TEXT
);
CREATE INDEX triggers_by_agent ON triggers (agent_id);
CREATE INDEX triggers_due ON triggers (next_run_at) WHERE deleted_at IS NULL;

-- One row per schedule slot that fired: the primary key makes each slot fire
-- once however many schedulers race for it.
CREATE TABLE trigger_fires (
    trigger_id TEXT NOT NULL REFERENCES triggers(id),
    slot_at    BIGINT NOT NULL,
    run_id     TEXT NOT NULL,
    PRIMARY KEY (trigger_id, slot_at)
);

-- Channels watched by YouTube triggers: one row per agent and channel (a
-- channel added again under another filter moves to that filter's trigger).
-- A poller claims a due channel with a lease, so one channel is polled by
-- one node at a time.
CREATE TABLE youtube_channels (
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    channel_id   TEXT NOT NULL,
    trigger_id   TEXT NOT NULL REFERENCES triggers(id),
    added_at     BIGINT NOT NULL,
    next_poll_at BIGINT NOT NULL,
    last_poll_at BIGINT,
    last_error   TEXT,
    -- 1 once the back-catalogue was recorded: later videos are new.
    primed       BIGINT NOT NULL DEFAULT 0,
    lease_owner  TEXT,
    lease_until  BIGINT,
    PRIMARY KEY (agent_id, channel_id)
);
CREATE INDEX youtube_channels_due ON youtube_channels (next_poll_at);
CREATE INDEX youtube_channels_by_trigger ON youtube_channels (trigger_id);

-- Videos an agent has seen on a channel: the primary key makes each video
-- fire at most once, and it outlives removal so re-adding never re-fires.
CREATE TABLE youtube_videos (
    agent_id   TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    video_id   TEXT NOT NULL,
    -- baseline (in the feed when added), fired or skipped
    outcome    TEXT NOT NULL,
    reason     TEXT,
    run_id     TEXT,
    seen_at    BIGINT NOT NULL,
    PRIMARY KEY (agent_id, channel_id, video_id)
);

-- Every rendered output, addressable as a node_render_id by its owner.
CREATE TABLE renders (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    run_id        TEXT NOT NULL REFERENCES runs(id),
    video_key     TEXT NOT NULL,
    thumbnail_key TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX runs_open ON runs (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    run_id     TEXT,
    flag       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES webhook_events(id),
    user_id          TEXT NOT NULL REFERENCES users(id),
    run_id           TEXT,
    flag             TEXT NOT NULL,
    url              TEXT NOT NULL,
    -- scheme://host:port of url: the unit of per-destination concurrency.
    destination      TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempt_count    BIGINT NOT NULL DEFAULT 0,
    attempts_allowed BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    -- Per-run order: this delivery waits while that one is pending.
    after_id         TEXT REFERENCES webhook_deliveries(id),
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_user ON webhook_deliveries (user_id, id);
CREATE INDEX deliveries_by_run ON webhook_deliveries (run_id, url);
CREATE INDEX deliveries_final ON webhook_deliveries (updated_at) WHERE status != 'pending';

CREATE TABLE webhook_attempts (
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries(id),
    attempt_no       BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    status_code      BIGINT,
    error            TEXT,
    error_detail     TEXT,
    response_snippet TEXT,
    truncated        BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt_no)
);
