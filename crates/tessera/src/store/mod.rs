//! Persistence: every SQL statement lives below this module, behind the
//! [`Store`] trait. Callers see domain records and never SQL, so a second
//! backend (PostgreSQL) is a second implementation of the same trait passing
//! the same tests.
//!
//! Timestamps are Unix milliseconds (`i64`) at this boundary; ids are typed
//! UUIDs. Work that must survive a crash (runs, webhook deliveries) is claimed
//! with leases: a claim writes `lease_owner` and `lease_until`, and a claim by
//! another node is only possible once `lease_until` has passed.

#[cfg(test)]
pub mod conformance;
pub mod postgres;
pub mod records;
pub mod sql;
pub mod sqlite;

use async_trait::async_trait;

use crate::domain::ids::{
    AgentId, ApiKeyId, DeliveryId, RenderId, RunId, TriggerId, UserId, VideoId,
};
use crate::domain::payload::FileRef;
pub use records::*;

/// A store failure. `Conflict` and `NotFound` are expected outcomes callers
/// branch on; `Internal` carries context for the log and becomes a 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Tessera persists. Implementations must be safe to share between
/// tasks and, for multi-node backends, between processes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Apply pending migrations; idempotent.
    async fn migrate(&self) -> StoreResult<()>;
    /// Database reachable and migrations applied.
    async fn ready(&self) -> StoreResult<()>;

    // --- settings -------------------------------------------------------
    /// Read a server-wide setting, storing `init` first if it is absent
    /// (first writer wins, so every node agrees).
    async fn setting_or_init(&self, name: &str, init: &str) -> StoreResult<String>;

    // --- users and keys -------------------------------------------------
    /// The oldest user, created if there is none.
    async fn default_user(&self, now: i64) -> StoreResult<UserId>;
    async fn create_user(&self, now: i64) -> StoreResult<UserId>;
    async fn count_api_keys(&self) -> StoreResult<u64>;
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyRecord>;
    /// The key with this hash, if it exists and is not revoked; records the use.
    async fn authenticate(&self, key_hash: &str, now: i64) -> StoreResult<Option<ApiKeyRecord>>;

    // --- per-user webhook credentials -------------------------------------
    async fn webhook_secret(&self, user: UserId) -> StoreResult<Option<String>>;
    async fn set_webhook_secret(
        &self,
        user: UserId,
        secret: Option<&str>,
        now: i64,
    ) -> StoreResult<()>;
    /// The user's Standard Webhooks signing keys, creating the first with `init`.
    async fn signing_keys(&self, user: UserId, init: &str, now: i64) -> StoreResult<SigningKeys>;

    // --- agents -----------------------------------------------------------
    async fn create_agent(&self, agent: &AgentRecord) -> StoreResult<()>;
    async fn agent(&self, user: UserId, id: AgentId) -> StoreResult<Option<AgentRecord>>;
    /// Newest first; `before` is the cursor (an id from the previous page).
    async fn list_agents(
        &self,
        user: UserId,
        before: Option<AgentId>,
        limit: u32,
    ) -> StoreResult<Vec<AgentRecord>>;
    /// Replace name, description and graph; `NotFound` for a missing or deleted agent.
    async fn update_agent(&self, agent: &AgentRecord) -> StoreResult<()>;
    /// Hide the agent (its runs stay readable); `NotFound` if already gone.
    async fn delete_agent(&self, user: UserId, id: AgentId, now: i64) -> StoreResult<()>;

    // --- runs -------------------------------------------------------------
    async fn create_run(&self, run: &RunRecord) -> StoreResult<()>;
    async fn run(&self, user: UserId, id: RunId) -> StoreResult<Option<RunRecord>>;
    /// Claim up to `limit` runs that are queued or whose lease expired.
    async fn claim_runs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<RunRecord>>;
    /// The owner of a claimed run checks in: extends the lease to
    /// `lease_until` (when given) and learns whether it still holds it and
    /// whether a cancel was requested.
    async fn check_in_run(
        &self,
        id: RunId,
        owner: &str,
        lease_until: Option<i64>,
    ) -> StoreResult<RunControl>;
    /// Give a lease back so another node can take the run at once.
    async fn release_run(&self, id: RunId, owner: &str) -> StoreResult<()>;
    /// Runs of a user, newest first, filtered.
    async fn list_runs(&self, user: UserId, filter: &RunFilter) -> StoreResult<Vec<RunRecord>>;
    /// Cancel a run. A queued run nobody works on ends at once with
    /// `finished_event`; a run in progress gets a cancel request its owner
    /// acts on. `Conflict` when the run already ended.
    async fn cancel_run(
        &self,
        user: UserId,
        id: RunId,
        now: i64,
        finished_event: NewEvent,
    ) -> StoreResult<CancelOutcome>;
    /// Queue a failed or cancelled run again as a new attempt; `Conflict` otherwise.
    async fn resume_run(&self, user: UserId, id: RunId, now: i64) -> StoreResult<()>;
    /// The files of a render the user owns.
    async fn render_files(&self, user: UserId, id: RenderId) -> StoreResult<Option<FileRef>>;
    /// Move a claimed run to `running` and enqueue its RUN_STARTED event, in
    /// one transaction. `false` (nothing written) when the lease was lost.
    async fn start_run(&self, update: RunStarted, event: NewEvent) -> StoreResult<bool>;
    /// Finish a claimed run and enqueue its RUN_FINISHED event, in one
    /// transaction, releasing the lease. `false` when the lease was lost.
    async fn finish_run(&self, update: RunFinished, event: NewEvent) -> StoreResult<bool>;

    // --- triggers ---------------------------------------------------------
    async fn create_trigger(&self, trigger: &TriggerRecord) -> StoreResult<()>;
    async fn trigger(&self, user: UserId, id: TriggerId) -> StoreResult<Option<TriggerRecord>>;
    async fn agent_triggers(&self, user: UserId, agent: AgentId)
    -> StoreResult<Vec<TriggerRecord>>;
    /// Remove a trigger; `NotFound` when it is not the user's or already gone.
    async fn delete_trigger(&self, user: UserId, id: TriggerId, now: i64) -> StoreResult<()>;
    /// Schedules whose next slot is due at `now`.
    async fn due_schedules(&self, now: i64, limit: u32) -> StoreResult<Vec<TriggerRecord>>;
    /// Fire one slot: record it and create its run in one transaction, unless
    /// that slot already fired (another scheduler won): then only move the
    /// schedule on. Returns whether this call created the run.
    async fn fire_schedule(&self, fire: ScheduleFire) -> StoreResult<bool>;
    /// Move a schedule on without firing (e.g. its agent is gone) and note why.
    async fn skip_schedule(
        &self,
        id: TriggerId,
        next_run_at: Option<i64>,
        error: Option<&str>,
        now: i64,
    ) -> StoreResult<()>;

    // --- YouTube channel triggers ------------------------------------------
    /// Add channels to the agent's YouTube trigger for `add.filter` (created
    /// if absent), in one transaction: channels watched under another filter
    /// move here keeping their seen videos, and triggers left without
    /// channels are removed. Returns the trigger's id.
    async fn add_youtube_channels(&self, add: YoutubeAdd) -> StoreResult<TriggerId>;
    /// Stop watching these channels on the agent (seen videos are kept);
    /// returns the channels that were removed.
    async fn remove_youtube_channels(
        &self,
        user: UserId,
        agent: AgentId,
        channels: Vec<String>,
        now: i64,
    ) -> StoreResult<Vec<String>>;
    /// The agent's watched channels, by channel id.
    async fn youtube_channels(
        &self,
        user: UserId,
        agent: AgentId,
    ) -> StoreResult<Vec<YoutubeChannelRecord>>;
    /// Claim up to `limit` channels due for a poll whose lease is free or
    /// expired (and whose trigger and agent still exist).
    async fn claim_youtube_channels(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedChannel>>;
    /// Which of `video_ids` the agent has not seen on this channel yet.
    async fn unseen_videos(
        &self,
        agent: AgentId,
        channel_id: &str,
        video_ids: Vec<String>,
    ) -> StoreResult<Vec<String>>;
    /// Record a video as seen and, when it fired, create its run — in one
    /// transaction. `false` (nothing written) when it was already seen or
    /// the poller no longer holds the channel's lease.
    async fn record_youtube_video(&self, video: YoutubeVideo) -> StoreResult<bool>;
    /// Finish a poll: note the outcome, schedule the next poll and release
    /// the lease; ignored when the lease was lost.
    async fn finish_youtube_poll(&self, poll: YoutubePoll) -> StoreResult<()>;

    // --- webhook outbox ---------------------------------------------------
    /// Store an event not tied to a run state change (TEST).
    async fn enqueue_event(&self, event: NewEvent) -> StoreResult<Vec<DeliveryId>>;
    /// [`Store::enqueue_event`] for many events, in one transaction: for
    /// bulk imports and for queueing a benchmark's backlog quickly.
    async fn enqueue_events(&self, events: Vec<NewEvent>) -> StoreResult<()>;
    /// Claim due deliveries: pending, due, not leased, and not waiting on an
    /// earlier event of the same run to the same URL. Each destination gets
    /// at most its room in `room`, half of it from its oldest due deliveries
    /// and the rest from its newest (see [`ClaimLane`]); saturated
    /// destinations are skipped. Destinations that have waited longest go
    /// first when `limit` is short.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
        room: &DestinationRoom,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Record attempts and their deliveries' next states in one
    /// transaction, releasing the leases `owner` holds on them. An attempt
    /// is recorded whoever holds the lease now; the state only changes where
    /// `owner` still holds it.
    async fn record_attempts(
        &self,
        owner: &str,
        batch: std::sync::Arc<[RecordedAttempt]>,
    ) -> StoreResult<()>;
    /// Give back leases `owner` holds on deliveries it will not attempt
    /// (claimed ahead, then shutdown or a lease too short to use).
    async fn release_deliveries(&self, owner: &str, ids: Vec<DeliveryId>) -> StoreResult<()>;
    /// [`Store::record_attempts`] for one attempt.
    async fn record_attempt(
        &self,
        delivery: DeliveryId,
        owner: &str,
        attempt: &AttemptRecord,
        next: NextState,
    ) -> StoreResult<()> {
        let one = RecordedAttempt {
            delivery,
            attempt: attempt.clone(),
            next,
        };
        self.record_attempts(owner, std::sync::Arc::new([one]))
            .await
    }
    async fn list_deliveries(
        &self,
        user: UserId,
        filter: &DeliveryFilter,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    async fn delivery(
        &self,
        user: UserId,
        id: DeliveryId,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRecord>)>>;
    /// Attempt now (manual resend). A finished delivery gets exactly one more
    /// attempt; a pending one is tried now and keeps its remaining retries.
    /// `NotFound` for another user's delivery; `Conflict` while an attempt is in flight.
    async fn retry_delivery(&self, user: UserId, id: DeliveryId, now: i64) -> StoreResult<()>;
    /// Every owner that holds a lease on a run or a delivery now.
    async fn lease_owners(&self) -> StoreResult<Vec<String>>;
    /// Expire every lease of `owner` (a process known to be dead), so its
    /// work is taken over now instead of when the leases run out.
    async fn expire_leases(&self, owner: &str) -> StoreResult<u64>;
    /// Deliveries still owed and the creation time of the oldest, for metrics.
    async fn outbox_stats(&self) -> StoreResult<OutboxStats>;
    /// Runs per API status, for metrics.
    async fn run_counts(&self) -> StoreResult<Vec<(RunStatus, u64)>>;
    /// Delete finished deliveries (and their attempts, and events left
    /// without deliveries) last updated before `before`. Returns how many
    /// deliveries were removed.
    async fn prune_deliveries(&self, before: i64) -> StoreResult<u64>;
    /// Replace the user's signing key, keeping the old one valid until `previous_valid_until`.
    async fn rotate_signing_key(
        &self,
        user: UserId,
        new_key: &str,
        previous_valid_until: i64,
        now: i64,
    ) -> StoreResult<SigningKeys>;

    // --- Dashboard ---
    async fn create_session(&self, token_hash: &str, session: &SessionRecord) -> StoreResult<()>;
    /// The live session with this token hash: not expired, its key not revoked.
    async fn session(&self, token_hash: &str, now: i64) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Delete expired sessions; returns how many.
    async fn prune_sessions(&self, now: i64) -> StoreResult<u64>;
    /// The user's active (not revoked) keys, newest first.
    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revoke one of the user's keys and end the sessions it opened.
    /// `NotFound` for another user's or an unknown key; `Conflict` for the
    /// user's last active key (nobody could log in again).
    async fn revoke_api_key(&self, user: UserId, id: ApiKeyId, now: i64) -> StoreResult<()>;
    /// Runs and deliveries created since `since`, counted by status.
    async fn activity(&self, user: UserId, since: i64) -> StoreResult<ActivitySummary>;
    /// All of the user's live triggers, oldest first.
    async fn list_triggers(&self, user: UserId) -> StoreResult<Vec<TriggerRecord>>;

    /// Record an announced upload (status `pending`).
    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()>;
    /// An upload by id, whoever owns it (the upload endpoint authenticates
    /// by its signed policy, not by a key; callers check the owner).
    async fn upload(&self, id: VideoId) -> StoreResult<Option<UploadRecord>>;
    /// Tessera received the file of a pending (or re-sent) upload; `false`
    /// when the upload is gone, finalized, or being finalized.
    async fn mark_uploaded(
        &self,
        id: VideoId,
        size_bytes: u64,
        filename: Option<String>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Mark an upload finalized with what the probe found, its file now at
    /// `object_key`; `false` when it is gone (cleaned up) or was finalized
    /// already.
    async fn finalize_upload(
        &self,
        id: VideoId,
        object_key: String,
        size_bytes: u64,
        media: UploadMedia,
        now: i64,
    ) -> StoreResult<bool>;
    /// Take the lease of one finalize call until `until`; `false` when the
    /// upload is finalized or another call holds the lease. While it is held
    /// no file is accepted for the upload.
    async fn begin_finalize(&self, id: VideoId, now: i64, until: i64) -> StoreResult<bool>;
    /// Give the finalize lease back (a no-op when finalizing ended it).
    async fn end_finalize(&self, id: VideoId) -> StoreResult<()>;
    /// An unfinalized upload whose file was refused goes back to waiting for
    /// a file; `false` when it is gone or finalized.
    async fn reopen_upload(&self, id: VideoId) -> StoreResult<bool>;
    /// The user's uploads, newest first.
    async fn list_uploads(&self, user: UserId, limit: u32) -> StoreResult<Vec<UploadRecord>>;
    /// Unfinalized uploads whose upload URL expired before `expired_before`,
    /// longest expired first.
    async fn stale_uploads(
        &self,
        expired_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<UploadRecord>>;
    /// Finalized uploads whose upload URL expired before `expired_before`
    /// and whose folder was not tidied yet.
    async fn untidied_uploads(
        &self,
        expired_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<UploadRecord>>;
    /// The strays beside a finalized upload's file are gone.
    async fn mark_upload_tidied(&self, id: VideoId, now: i64) -> StoreResult<()>;
    /// Forget an unfinalized upload; `false` when it is gone or was
    /// finalized in the meantime (then its file must stay).
    async fn delete_unfinalized_upload(&self, id: VideoId) -> StoreResult<bool>;

    /// Call `on_work` when another node queues work, until `stop`. Backends
    /// one process owns (SQLite) have nothing to listen to: their writers
    /// wake this process's workers directly, and polling covers the rest.
    fn listen(&self, on_work: WorkListener, stop: tokio_util::sync::CancellationToken) {
        let _ = (on_work, stop);
    }
}

/// Kinds of new work a node may be told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A run was queued (or resumed).
    Runs,
    /// A delivery became due now (new event, manual resend).
    Deliveries,
}

impl Work {
    pub const ALL: [Work; 2] = [Work::Runs, Work::Deliveries];

    /// The PostgreSQL notification channel.
    pub fn channel(self) -> &'static str {
        match self {
            Work::Runs => "tessera_runs",
            Work::Deliveries => "tessera_deliveries",
        }
    }
}

/// Called with each [`Work`] another node announced.
pub type WorkListener = std::sync::Arc<dyn Fn(Work) + Send + Sync>;

/// A convenient alias used across the app.
pub type DynStore = std::sync::Arc<dyn Store>;
