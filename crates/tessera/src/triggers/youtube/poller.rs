//! The YouTube poller role. Every poll interval it claims the channels due
//! for a poll (a lease in the database, so one channel is polled by one node
//! at a time), fetches each feed and decides on the videos the agent has not
//! seen:
//! - the first successful poll of a channel only records what is already in
//!   the feed (the back-catalogue never fires);
//! - later, each unseen video id is recorded together with its run in one
//!   transaction, so it fires once — edits change `updated`, not the id;
//! - a feed error is stored as the channel's `last_error` and the channel is
//!   polled again at its next regular time, seen-state untouched, so a
//!   recovery fires only genuinely new videos and never a burst.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::feed_url;
use crate::app::{Services, Wakeups};
use crate::config::Config;
use crate::domain::payload::{TriggerInfo, YouTubeTriggerInfo, iso8601};
use crate::media::ytdlp;
use crate::net::{NetConfig, download_client};
use crate::store::{
    AgentRecord, ClaimedChannel, DynStore, RunRecord, SourceKind, SourceSpec, StoreResult,
    VideoOutcome, YoutubePoll, YoutubeVideo,
};
use crate::triggers::feed::{Entry, Feed, MAX_FEED_BYTES, parse_feed, watch_url};

/// Most channels claimed per tick.
const BATCH: u32 = 20;
/// Channels polled at once by one node.
const CONCURRENCY: usize = 4;
/// Deadline for fetching one feed.
const FEED_TIMEOUT: Duration = Duration::from_secs(20);
/// Deadline for one yt-dlp metadata lookup.
const DURATION_TIMEOUT: Duration = Duration::from_secs(60);
/// A channel's lease: longer than a poll may take (see [`WORK_BUDGET`]).
const LEASE: Duration = Duration::from_secs(600);
/// Time a poll spends on new videos; what is left over stays unseen and is
/// handled by the next poll, well inside the lease.
const WORK_BUDGET: Duration = Duration::from_secs(300);

pub struct Poller {
    store: DynStore,
    config: Arc<Config>,
    net: Arc<NetConfig>,
    client: reqwest::Client,
    owner: String,
    wake: Wakeups,
}

/// How one poll ended, for [`YoutubePoll`].
struct Polled {
    error: Option<String>,
    baseline: Option<Vec<String>>,
}

/// What to do with one new video.
enum Decision {
    Fire(Box<RunRecord>),
    /// Expected (the filter says no): recorded, the channel stays healthy.
    Filtered(String),
    /// Could not be decided (no yt-dlp, agent changed): recorded and shown
    /// as the channel's `last_error`.
    Undecidable(String),
}

impl Poller {
    pub fn new(services: &Services) -> Self {
        Poller {
            store: services.store.clone(),
            config: services.config.clone(),
            net: services.net.clone(),
            client: download_client(&services.net),
            owner: services.owner.clone(),
            wake: services.wake.clone(),
        }
    }

    /// Poll due channels every poll interval until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.tick(Utc::now()).await {
                tracing::error!(error = %e, "youtube poller tick failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Poll every channel due at `now`; returns how many runs were created.
    pub async fn tick(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let now_ms = now.timestamp_millis();
        let lease_until = now_ms + LEASE.as_millis() as i64;
        let claimed = self
            .store
            .claim_youtube_channels(&self.owner, now_ms, lease_until, BATCH)
            .await?;
        let created: usize = futures_util::stream::iter(claimed)
            .map(|channel| self.poll(channel))
            .buffer_unordered(CONCURRENCY)
            .fold(0, |sum, n| async move { sum + n })
            .await;
        if created > 0 {
            self.wake.runs.notify_one();
        }
        Ok(created)
    }

    /// Poll one claimed channel and release it; returns the runs created.
    async fn poll(&self, channel: ClaimedChannel) -> usize {
        let mut created = 0;
        let polled = match self.poll_channel(&channel, &mut created).await {
            Ok(polled) => polled,
            Err(e) => {
                tracing::error!(channel = %channel.channel_id, error = %e, "youtube poll failed");
                Polled {
                    error: Some("internal error while polling; retried at the next poll".into()),
                    baseline: None,
                }
            }
        };
        let now = Utc::now().timestamp_millis();
        let finish = YoutubePoll {
            agent_id: channel.agent_id,
            channel_id: channel.channel_id.clone(),
            owner: self.owner.clone(),
            error: polled.error,
            baseline: polled.baseline,
            next_poll_at: now + self.config.youtube_poll_interval.as_millis() as i64,
            at: now,
        };
        if let Err(e) = self.store.finish_youtube_poll(finish).await {
            tracing::error!(channel = %channel.channel_id, error = %e, "could not record a youtube poll");
        }
        created
    }

    async fn poll_channel(
        &self,
        channel: &ClaimedChannel,
        created: &mut usize,
    ) -> StoreResult<Polled> {
        let feed = match self.fetch_feed(&channel.channel_id).await {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(channel = %channel.channel_id, error = %e, "youtube feed unavailable");
                return Ok(Polled {
                    error: Some(format!("feed: {e}")),
                    baseline: None,
                });
            }
        };
        // First successful poll: what was published before the channel was
        // added is the back-catalogue; anything newer (published while early
        // polls failed) is new like on any later poll.
        let (baseline, candidates): (Option<Vec<String>>, Vec<String>) = if channel.primed {
            (
                None,
                feed.entries.iter().map(|e| e.video_id.clone()).collect(),
            )
        } else {
            let added = chrono::DateTime::from_timestamp_millis(channel.added_at);
            let (old, new): (Vec<_>, Vec<_>) = feed
                .entries
                .iter()
                .partition(|e| e.published.is_none_or(|p| added.is_none_or(|a| p <= a)));
            (
                Some(old.iter().map(|e| e.video_id.clone()).collect()),
                new.iter().map(|e| e.video_id.clone()).collect(),
            )
        };
        let unseen: HashSet<String> = if candidates.is_empty() {
            HashSet::new()
        } else {
            self.store
                .unseen_videos(channel.agent_id, &channel.channel_id, candidates)
                .await?
                .into_iter()
                .collect()
        };
        let mut error = None;
        if unseen.is_empty() {
            return Ok(Polled { error, baseline });
        }
        let Some(agent) = self.store.agent(channel.user_id, channel.agent_id).await? else {
            return Ok(Polled {
                error: Some("the agent was deleted".into()),
                baseline,
            });
        };
        let budget = Instant::now() + WORK_BUDGET;
        let mut done = HashSet::new();
        // Oldest first (the feed is newest first), so runs follow publication.
        for entry in feed.entries.iter().rev() {
            if !unseen.contains(&entry.video_id) || !done.insert(entry.video_id.as_str()) {
                continue;
            }
            if Instant::now() > budget {
                break;
            }
            let (outcome, note) = match self.decide(channel, &agent, entry).await {
                Decision::Fire(run) => (VideoOutcome::Fired(run), None),
                Decision::Filtered(why) => (VideoOutcome::Skipped(why), None),
                Decision::Undecidable(why) => (
                    VideoOutcome::Skipped(why.clone()),
                    Some(format!("video {} skipped: {why}", entry.video_id)),
                ),
            };
            let fired = matches!(outcome, VideoOutcome::Fired(_));
            let recorded = self
                .store
                .record_youtube_video(YoutubeVideo {
                    agent_id: channel.agent_id,
                    channel_id: channel.channel_id.clone(),
                    video_id: entry.video_id.clone(),
                    owner: self.owner.clone(),
                    outcome,
                    at: Utc::now().timestamp_millis(),
                })
                .await?;
            if recorded && fired {
                *created += 1;
                tracing::info!(channel = %channel.channel_id, video = %entry.video_id, trigger = %channel.trigger_id, "youtube video fired");
            }
            error = note.or(error);
        }
        Ok(Polled { error, baseline })
    }

    async fn fetch_feed(&self, channel_id: &str) -> Result<Feed, String> {
        let url = feed_url(&self.config.youtube_feed_url, channel_id)?;
        let body = super::fetch_capped(
            &self.client,
            &self.net.policy,
            &self.tmp_dir(),
            &url,
            MAX_FEED_BYTES as u64,
            FEED_TIMEOUT,
        )
        .await?;
        parse_feed(&body).map_err(|e| e.to_string())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.config.data_dir.join("tmp")
    }

    async fn decide(
        &self,
        channel: &ClaimedChannel,
        agent: &AgentRecord,
        entry: &Entry,
    ) -> Decision {
        // Always the canonical watch URL: the feed's own link is not trusted
        // to point at YouTube.
        let video_url = watch_url(&entry.video_id);
        if !channel.filter.is_empty()
            && let Some(skip) = self.check_duration(channel, &video_url).await
        {
            return skip;
        }
        let Some(slot) = crate::domain::graph::single_input(&agent.graph) else {
            return Decision::Undecidable(
                "the agent no longer has exactly one video_input node".into(),
            );
        };
        let now = Utc::now();
        let triggered_by = TriggerInfo::YouTube(YouTubeTriggerInfo {
            kind: Default::default(),
            channel_id: channel.channel_id.clone(),
            video_id: entry.video_id.clone(),
            video_title: entry.title.clone(),
            video_url: video_url.clone(),
            triggered_at: iso8601(now),
            trigger_id: channel.trigger_id.to_string(),
        });
        let source = SourceSpec {
            slot,
            kind: SourceKind::Url { url: video_url },
            clip_start_ms: None,
            clip_end_ms: None,
        };
        Decision::Fire(Box::new(RunRecord::queued(
            agent,
            vec![source],
            false,
            channel.callback_url.clone(),
            agent.graph.clone(),
            triggered_by,
            Some(channel.trigger_id),
            now.timestamp_millis(),
        )))
    }

    /// `None` when the video passes the duration filter, else why not.
    async fn check_duration(&self, channel: &ClaimedChannel, video_url: &str) -> Option<Decision> {
        let url = match url::Url::parse(video_url) {
            Ok(url) => url,
            Err(e) => return Some(Decision::Undecidable(format!("bad video URL ({e})"))),
        };
        let filter = &channel.filter;
        match ytdlp::duration(&self.config.ytdlp_path, &url, DURATION_TIMEOUT).await {
            Ok(Some(seconds)) if filter.admits(seconds) => None,
            Ok(Some(seconds)) => Some(Decision::Filtered(format!(
                "duration {seconds:.0} s is outside the filter ({} to {} s)",
                filter.min_seconds.map_or("0".into(), |s| s.to_string()),
                filter.max_seconds.map_or("∞".into(), |s| s.to_string()),
            ))),
            Ok(None) => Some(Decision::Undecidable(
                "yt-dlp reports no duration (a live stream or an upcoming premiere), so the duration filter cannot be evaluated".into(),
            )),
            Err(e) => Some(Decision::Undecidable(format!(
                "the duration filter cannot be evaluated: {e}"
            ))),
        }
    }
}
