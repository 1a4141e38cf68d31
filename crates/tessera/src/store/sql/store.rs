//! The [`Store`] over any [`Backend`]: every method is one call into the
//! statement modules inside the backend's write transaction or on a reader.

use std::future::Future;

use async_trait::async_trait;

use super::{
    Db, OptionalExtension, SqlContext, accounts, dashboard, outbox, runs, triggers, uploads,
    youtube,
};
use crate::domain::ids::{
    AgentId, ApiKeyId, DeliveryId, RenderId, RunId, TriggerId, UserId, VideoId,
};
use crate::domain::payload::FileRef;
use crate::store::*;

/// A database the statement modules run on: its connections, transactions
/// and migrations.
pub trait Backend: Send + Sync + 'static {
    type Conn: Db;

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&Self::Conn) -> StoreResult<T> + Send + 'static;

    /// Runs `f` on a connection that sees committed data.
    fn read<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&Self::Conn) -> StoreResult<T> + Send + 'static;

    /// Called first in the migration transaction: keeps nodes that start
    /// together from migrating twice.
    fn lock_migrations(conn: &Self::Conn) -> StoreResult<()>;

    /// Applies one migration script.
    fn apply(conn: &Self::Conn, script: &str) -> StoreResult<()>;

    /// See [`Store::listen`].
    fn listen(&self, on_work: WorkListener, stop: tokio_util::sync::CancellationToken) {
        let _ = (on_work, stop);
    }
}

/// Migrations in order, for every backend; the position + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_dashboard.sql"),
    include_str!("../../../migrations/0003_uploads.sql"),
    include_str!("../../../migrations/0004_claims.sql"),
];

/// The store over a backend.
pub struct SqlStore<B>(pub(crate) B);

impl<B: Backend> SqlStore<B> {
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&B::Conn) -> StoreResult<T> + Send + 'static,
    {
        self.0.write(f).await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&B::Conn) -> StoreResult<T> + Send + 'static,
    {
        self.0.read(f).await
    }
}

fn schema_version<C: Db>(conn: &C) -> super::Result<usize> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        (),
    )?;
    let v: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", (), |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    Ok(v.unwrap_or(0) as usize)
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn migrate(&self) -> StoreResult<()> {
        self.write(|tx| {
            B::lock_migrations(tx)?;
            let current = schema_version(tx).sql("read schema version")?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
                B::apply(tx, sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    (i as i64 + 1, chrono::Utc::now().timestamp_millis()),
                )
                .sql("record migration")?;
            }
            Ok(())
        })
        .await
    }

    async fn ready(&self) -> StoreResult<()> {
        self.read(|conn| {
            let v: Option<i64> = conn
                .query_row("SELECT MAX(version) FROM schema_migrations", (), |r| {
                    r.get(0)
                })
                .sql("read schema version")?;
            if v.unwrap_or(0) as usize != MIGRATIONS.len() {
                return Err(StoreError::Internal(anyhow::anyhow!(
                    "migrations not applied"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn setting_or_init(&self, name: &str, init: &str) -> StoreResult<String> {
        let (name, init) = (name.to_owned(), init.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                (&name, &init),
            )
            .sql("init setting")?;
            tx.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .sql("read setting")
        })
        .await
    }

    async fn default_user(&self, now: i64) -> StoreResult<UserId> {
        self.write(move |tx| accounts::default_user(tx, now)).await
    }
    async fn create_user(&self, now: i64) -> StoreResult<UserId> {
        self.write(move |tx| accounts::create_user(tx, now)).await
    }
    async fn count_api_keys(&self) -> StoreResult<u64> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM api_keys", (), |r| r.get::<_, i64>(0))
                .sql("count keys")
                .map(|n| n as u64)
        })
        .await
    }
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        self.write(move |tx| accounts::create_api_key(tx, key))
            .await
    }
    async fn authenticate(&self, key_hash: &str, now: i64) -> StoreResult<Option<ApiKeyRecord>> {
        let hash = key_hash.to_owned();
        let found = self.read(move |c| accounts::key_by_hash(c, &hash)).await?;
        // Record the use at most once a minute per key: authentication is on
        // every request and must not turn every read into a write.
        if let Some(key) = &found
            && key.last_used_at.is_none_or(|t| now - t > 60_000)
        {
            let id = key.id;
            self.write(move |tx| accounts::touch_key(tx, id, now))
                .await?;
        }
        Ok(found)
    }
    async fn webhook_secret(&self, user: UserId) -> StoreResult<Option<String>> {
        self.read(move |c| accounts::webhook_secret(c, user)).await
    }
    async fn set_webhook_secret(
        &self,
        user: UserId,
        secret: Option<&str>,
        _now: i64,
    ) -> StoreResult<()> {
        let secret = secret.map(str::to_owned);
        self.write(move |tx| accounts::set_webhook_secret(tx, user, secret))
            .await
    }
    async fn signing_keys(&self, user: UserId, init: &str, now: i64) -> StoreResult<SigningKeys> {
        // Almost always the key exists: answer from a reader, write only the first time.
        if let Some(keys) = self
            .read(move |c| accounts::stored_signing_keys(c, user, now))
            .await?
        {
            return Ok(keys);
        }
        let init = init.to_owned();
        self.write(move |tx| accounts::signing_keys(tx, user, &init, now))
            .await
    }

    async fn create_agent(&self, agent: &AgentRecord) -> StoreResult<()> {
        let agent = agent.clone();
        self.write(move |tx| runs::insert_agent(tx, &agent)).await
    }
    async fn agent(&self, user: UserId, id: AgentId) -> StoreResult<Option<AgentRecord>> {
        self.read(move |c| runs::agent(c, user, id)).await
    }
    async fn update_agent(&self, agent: &AgentRecord) -> StoreResult<()> {
        let agent = agent.clone();
        self.write(move |tx| runs::update_agent(tx, &agent)).await
    }
    async fn delete_agent(&self, user: UserId, id: AgentId, now: i64) -> StoreResult<()> {
        self.write(move |tx| runs::delete_agent(tx, user, id, now))
            .await
    }
    async fn list_agents(
        &self,
        user: UserId,
        before: Option<AgentId>,
        limit: u32,
    ) -> StoreResult<Vec<AgentRecord>> {
        self.read(move |c| runs::list_agents(c, user, before, limit))
            .await
    }
    async fn create_run(&self, run: &RunRecord) -> StoreResult<()> {
        let run = run.clone();
        self.write(move |tx| runs::insert_run(tx, &run)).await
    }
    async fn run(&self, user: UserId, id: RunId) -> StoreResult<Option<RunRecord>> {
        self.read(move |c| runs::run(c, Some(user), id)).await
    }
    async fn claim_runs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<RunRecord>> {
        let owner = owner.to_owned();
        self.write(move |tx| runs::claim(tx, &owner, now, lease_until, limit))
            .await
    }
    async fn check_in_run(
        &self,
        id: RunId,
        owner: &str,
        lease_until: Option<i64>,
    ) -> StoreResult<RunControl> {
        let owner = owner.to_owned();
        match lease_until {
            Some(until) => {
                self.write(move |tx| runs::check_in(tx, id, &owner, Some(until)))
                    .await
            }
            None => {
                self.read(move |c| runs::check_in(c, id, &owner, None))
                    .await
            }
        }
    }
    async fn release_run(&self, id: RunId, owner: &str) -> StoreResult<()> {
        let owner = owner.to_owned();
        self.write(move |tx| runs::release(tx, id, &owner)).await
    }
    async fn list_runs(&self, user: UserId, filter: &RunFilter) -> StoreResult<Vec<RunRecord>> {
        let filter = filter.clone();
        self.read(move |c| runs::list(c, user, &filter)).await
    }
    async fn cancel_run(
        &self,
        user: UserId,
        id: RunId,
        now: i64,
        finished_event: NewEvent,
    ) -> StoreResult<CancelOutcome> {
        self.write(move |tx| {
            let outcome = runs::cancel(tx, user, id, now)?;
            if outcome == CancelOutcome::Cancelled {
                outbox::insert_event(tx, &finished_event)?;
            }
            Ok(outcome)
        })
        .await
    }
    async fn resume_run(&self, user: UserId, id: RunId, now: i64) -> StoreResult<()> {
        self.write(move |tx| runs::resume(tx, user, id, now)).await
    }
    async fn render_files(&self, user: UserId, id: RenderId) -> StoreResult<Option<FileRef>> {
        self.read(move |c| runs::render_files(c, user, id)).await
    }
    async fn start_run(&self, update: RunStarted, event: NewEvent) -> StoreResult<bool> {
        self.write(move |tx| {
            if !runs::mark_started(tx, &update)? {
                return Ok(false);
            }
            outbox::insert_event(tx, &event)?;
            Ok(true)
        })
        .await
    }
    async fn finish_run(&self, update: RunFinished, event: NewEvent) -> StoreResult<bool> {
        self.write(move |tx| {
            if !runs::mark_finished(tx, &update)? {
                return Ok(false);
            }
            outbox::insert_event(tx, &event)?;
            Ok(true)
        })
        .await
    }

    async fn enqueue_event(&self, event: NewEvent) -> StoreResult<Vec<DeliveryId>> {
        self.write(move |tx| outbox::insert_event(tx, &event)).await
    }
    async fn enqueue_events(&self, events: Vec<NewEvent>) -> StoreResult<()> {
        self.write(move |tx| {
            events
                .iter()
                .try_for_each(|e| outbox::insert_event(tx, e).map(drop))
        })
        .await
    }
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
        room: &DestinationRoom,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let owner = owner.to_owned();
        let room = room.clone();
        self.write(move |tx| outbox::claim(tx, &owner, now, lease_until, limit, &room))
            .await
    }
    async fn release_deliveries(&self, owner: &str, ids: Vec<DeliveryId>) -> StoreResult<()> {
        let owner = owner.to_owned();
        self.write(move |tx| outbox::release(tx, &owner, &ids))
            .await
    }
    async fn record_attempts(
        &self,
        owner: &str,
        batch: std::sync::Arc<[RecordedAttempt]>,
    ) -> StoreResult<()> {
        let owner = owner.to_owned();
        self.write(move |tx| outbox::record_attempts(tx, &owner, &batch))
            .await
    }
    async fn list_deliveries(
        &self,
        user: UserId,
        filter: &DeliveryFilter,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let filter = filter.clone();
        self.read(move |c| outbox::list(c, user, &filter)).await
    }
    async fn delivery(
        &self,
        user: UserId,
        id: DeliveryId,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRecord>)>> {
        self.read(move |c| outbox::get(c, user, id)).await
    }
    async fn retry_delivery(&self, user: UserId, id: DeliveryId, now: i64) -> StoreResult<()> {
        self.write(move |tx| outbox::retry_now(tx, user, id, now))
            .await
    }
    async fn create_trigger(&self, trigger: &TriggerRecord) -> StoreResult<()> {
        let trigger = trigger.clone();
        self.write(move |tx| triggers::insert(tx, &trigger)).await
    }
    async fn trigger(&self, user: UserId, id: TriggerId) -> StoreResult<Option<TriggerRecord>> {
        self.read(move |c| triggers::get(c, user, id)).await
    }
    async fn agent_triggers(
        &self,
        user: UserId,
        agent: AgentId,
    ) -> StoreResult<Vec<TriggerRecord>> {
        self.read(move |c| triggers::of_agent(c, user, agent)).await
    }
    async fn delete_trigger(&self, user: UserId, id: TriggerId, now: i64) -> StoreResult<()> {
        self.write(move |tx| triggers::delete(tx, user, id, now))
            .await
    }
    async fn due_schedules(&self, now: i64, limit: u32) -> StoreResult<Vec<TriggerRecord>> {
        self.read(move |c| triggers::due_schedules(c, now, limit))
            .await
    }
    async fn fire_schedule(&self, fire: ScheduleFire) -> StoreResult<bool> {
        self.write(move |tx| triggers::fire(tx, &fire)).await
    }
    async fn skip_schedule(
        &self,
        id: TriggerId,
        next_run_at: Option<i64>,
        error: Option<&str>,
        now: i64,
    ) -> StoreResult<()> {
        let error = error.map(str::to_owned);
        self.write(move |tx| triggers::skip(tx, id, next_run_at, error.as_deref(), now))
            .await
    }
    async fn add_youtube_channels(&self, add: YoutubeAdd) -> StoreResult<TriggerId> {
        self.write(move |tx| youtube::add(tx, &add)).await
    }
    async fn remove_youtube_channels(
        &self,
        user: UserId,
        agent: AgentId,
        channels: Vec<String>,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        self.write(move |tx| youtube::remove(tx, user, agent, &channels, now))
            .await
    }
    async fn youtube_channels(
        &self,
        user: UserId,
        agent: AgentId,
    ) -> StoreResult<Vec<YoutubeChannelRecord>> {
        self.read(move |c| youtube::of_agent(c, user, agent)).await
    }
    async fn claim_youtube_channels(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedChannel>> {
        let owner = owner.to_owned();
        self.write(move |tx| youtube::claim(tx, &owner, now, lease_until, limit))
            .await
    }
    async fn unseen_videos(
        &self,
        agent: AgentId,
        channel_id: &str,
        video_ids: Vec<String>,
    ) -> StoreResult<Vec<String>> {
        let channel_id = channel_id.to_owned();
        self.read(move |c| youtube::unseen(c, agent, &channel_id, video_ids))
            .await
    }
    async fn record_youtube_video(&self, video: YoutubeVideo) -> StoreResult<bool> {
        self.write(move |tx| youtube::record_video(tx, &video))
            .await
    }
    async fn finish_youtube_poll(&self, poll: YoutubePoll) -> StoreResult<()> {
        self.write(move |tx| youtube::finish_poll(tx, &poll)).await
    }
    async fn lease_owners(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT lease_owner FROM runs WHERE lease_owner IS NOT NULL
                     UNION SELECT lease_owner FROM webhook_deliveries WHERE lease_owner IS NOT NULL
                     UNION SELECT lease_owner FROM youtube_channels WHERE lease_owner IS NOT NULL",
                )
                .sql("prepare lease owners")?;
            let owners = stmt
                .query_map((), |r| r.get(0))
                .sql("lease owners")?
                .collect::<super::Result<Vec<String>>>()
                .sql("read lease owners")?;
            Ok(owners)
        })
        .await
    }
    async fn expire_leases(&self, owner: &str) -> StoreResult<u64> {
        let owner = owner.to_owned();
        self.write(move |tx| {
            let runs = tx
                .execute(
                    "UPDATE runs SET lease_until = 0 WHERE lease_owner = ?1",
                    [&owner],
                )
                .sql("expire run leases")?;
            let deliveries = tx
                .execute(
                    "UPDATE webhook_deliveries SET lease_until = 0 WHERE lease_owner = ?1",
                    [&owner],
                )
                .sql("expire delivery leases")?;
            let channels = tx
                .execute(
                    "UPDATE youtube_channels SET lease_until = 0 WHERE lease_owner = ?1",
                    [&owner],
                )
                .sql("expire channel leases")?;
            Ok((runs + deliveries + channels) as u64)
        })
        .await
    }
    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        self.read(outbox::stats).await
    }
    async fn run_counts(&self) -> StoreResult<Vec<(RunStatus, u64)>> {
        self.read(runs::counts).await
    }
    async fn prune_deliveries(&self, before: i64) -> StoreResult<u64> {
        self.write(move |tx| outbox::prune(tx, before)).await
    }
    async fn rotate_signing_key(
        &self,
        user: UserId,
        new_key: &str,
        previous_valid_until: i64,
        now: i64,
    ) -> StoreResult<SigningKeys> {
        let new_key = new_key.to_owned();
        self.write(move |tx| {
            accounts::rotate_signing_key(tx, user, &new_key, previous_valid_until, now)
        })
        .await
    }

    async fn create_session(&self, token_hash: &str, session: &SessionRecord) -> StoreResult<()> {
        let (hash, session) = (token_hash.to_owned(), session.clone());
        self.write(move |tx| dashboard::create_session(tx, &hash, &session))
            .await
    }
    async fn session(&self, token_hash: &str, now: i64) -> StoreResult<Option<SessionRecord>> {
        let hash = token_hash.to_owned();
        self.read(move |c| dashboard::session(c, &hash, now)).await
    }
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let hash = token_hash.to_owned();
        self.write(move |tx| dashboard::delete_session(tx, &hash))
            .await
    }
    async fn prune_sessions(&self, now: i64) -> StoreResult<u64> {
        self.write(move |tx| dashboard::prune_sessions(tx, now))
            .await
    }
    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKeyRecord>> {
        self.read(move |c| dashboard::list_api_keys(c, user)).await
    }
    async fn revoke_api_key(&self, user: UserId, id: ApiKeyId, now: i64) -> StoreResult<()> {
        self.write(move |tx| dashboard::revoke_api_key(tx, user, id, now))
            .await
    }
    async fn activity(&self, user: UserId, since: i64) -> StoreResult<ActivitySummary> {
        self.read(move |c| dashboard::activity(c, user, since))
            .await
    }
    fn listen(&self, on_work: WorkListener, stop: tokio_util::sync::CancellationToken) {
        self.0.listen(on_work, stop);
    }

    async fn list_triggers(&self, user: UserId) -> StoreResult<Vec<TriggerRecord>> {
        self.read(move |c| triggers::of_user(c, user)).await
    }

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()> {
        let upload = upload.clone();
        self.write(move |tx| uploads::insert(tx, &upload)).await
    }
    async fn upload(&self, id: VideoId) -> StoreResult<Option<UploadRecord>> {
        self.read(move |c| uploads::get(c, id)).await
    }
    async fn mark_uploaded(
        &self,
        id: VideoId,
        size_bytes: u64,
        filename: Option<String>,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(move |tx| uploads::mark_uploaded(tx, id, size_bytes, filename.as_deref(), now))
            .await
    }
    async fn finalize_upload(
        &self,
        id: VideoId,
        object_key: String,
        size_bytes: u64,
        media: UploadMedia,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(move |tx| uploads::finalize(tx, id, &object_key, size_bytes, media, now))
            .await
    }
    async fn begin_finalize(&self, id: VideoId, now: i64, until: i64) -> StoreResult<bool> {
        self.write(move |tx| uploads::begin_finalize(tx, id, now, until))
            .await
    }
    async fn end_finalize(&self, id: VideoId) -> StoreResult<()> {
        self.write(move |tx| uploads::end_finalize(tx, id)).await
    }
    async fn reopen_upload(&self, id: VideoId) -> StoreResult<bool> {
        self.write(move |tx| uploads::reopen(tx, id)).await
    }
    async fn list_uploads(&self, user: UserId, limit: u32) -> StoreResult<Vec<UploadRecord>> {
        self.read(move |c| uploads::of_user(c, user, limit)).await
    }
    async fn stale_uploads(
        &self,
        expired_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<UploadRecord>> {
        self.read(move |c| uploads::stale(c, expired_before, limit))
            .await
    }
    async fn untidied_uploads(
        &self,
        expired_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<UploadRecord>> {
        self.read(move |c| uploads::untidied(c, expired_before, limit))
            .await
    }
    async fn mark_upload_tidied(&self, id: VideoId, now: i64) -> StoreResult<()> {
        self.write(move |tx| uploads::mark_tidied(tx, id, now))
            .await
    }
    async fn delete_unfinalized_upload(&self, id: VideoId) -> StoreResult<bool> {
        self.write(move |tx| uploads::delete_unfinalized(tx, id))
            .await
    }
}
