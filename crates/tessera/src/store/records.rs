//! The records the [`Store`](super::Store) reads and writes: plain data,
//! separate from API types (serde for the wire lives in `api`) and from rows
//! (each backend maps its own rows to these).

use serde_json::Value;

use crate::domain::graph::AgentGraph;
use crate::domain::ids::{
    AgentId, ApiKeyId, DeliveryId, EventId, RenderId, RunId, TriggerId, UserId, VideoId,
};
use crate::domain::payload::{
    EventBody, FileRef, FinishedStatus, InputError, OutputRef, TriggerInfo,
};

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub user_id: UserId,
    pub name: String,
    pub key_hash: String,
    pub created_at: i64,
}

/// A dashboard session, looked up by the hash of its cookie token.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub api_key_id: ApiKeyId,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A user's activity since a point in time, for the dashboard's home page.
#[derive(Clone, Debug, Default)]
pub struct ActivitySummary {
    pub runs: Vec<(RunStatus, u64)>,
    pub deliveries: Vec<(DeliveryStatus, u64)>,
}

#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A user's Standard Webhooks keys: the current one and, during a rotation's
/// grace period, the previous one.
#[derive(Clone, Debug)]
pub struct SigningKeys {
    pub current: String,
    pub previous: Option<(String, i64)>,
}

#[derive(Clone, Debug)]
pub struct AgentRecord {
    pub id: AgentId,
    pub user_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub graph: AgentGraph,
    pub created_at: i64,
    pub updated_at: i64,
}

/// API-visible run status. `queued` is an extension of the seed's statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    PartialComplete,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::PartialComplete => "partial_complete",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "partial_complete" => RunStatus::PartialComplete,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl From<FinishedStatus> for RunStatus {
    fn from(s: FinishedStatus) -> Self {
        match s {
            FinishedStatus::Completed => RunStatus::Completed,
            FinishedStatus::PartialComplete => RunStatus::PartialComplete,
            FinishedStatus::Failed => RunStatus::Failed,
        }
    }
}

/// Where one input comes from.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceKind {
    /// Downloaded over HTTP(S).
    Url { url: String },
    /// An output of an earlier run of the same user.
    Render { render_id: RenderId },
    /// A finalized upload of the same user.
    Upload { video_id: VideoId },
}

/// One input of a run: the `video_input` slot it feeds and where it comes from.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SourceSpec {
    pub slot: String,
    #[serde(flatten)]
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_start_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_end_ms: Option<u64>,
}

impl SourceSpec {
    /// How the source is named in messages and `errors[].source`.
    pub fn label(&self) -> String {
        match &self.kind {
            SourceKind::Url { url } => url.clone(),
            SourceKind::Render { render_id } => format!("node_render_id:{render_id}"),
            SourceKind::Upload { video_id } => format!("video_id:{video_id}"),
        }
    }
}

/// One input that was ingested: its position in the request and its files.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct IngestedInput {
    pub input_index: usize,
    pub source: String,
    pub files: FileRef,
    pub duration_ms: u64,
}

/// A run with everything the API and the engine need.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: RunId,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub status: RunStatus,
    /// Inputs in request order.
    pub sources: Vec<SourceSpec>,
    /// All sources form one job (an agent with several `video_input`
    /// nodes); otherwise every source is a job of its own.
    pub multi_input: bool,
    pub callback_url: Option<String>,
    /// The agent's graph with this run's `update_params` applied.
    pub graph: AgentGraph,
    pub triggered_by: TriggerInfo,
    pub inputs: Vec<IngestedInput>,
    pub outputs: Vec<OutputRef>,
    pub errors: Vec<InputError>,
    pub status_message: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// 1 for the first attempt; each resume adds one.
    pub attempt: u32,
    pub cancel_requested: bool,
    /// The trigger that started the run, if any.
    pub trigger_id: Option<TriggerId>,
}

impl RunRecord {
    /// A new queued run of `agent`.
    #[allow(clippy::too_many_arguments)]
    pub fn queued(
        agent: &AgentRecord,
        sources: Vec<SourceSpec>,
        multi_input: bool,
        callback_url: Option<String>,
        graph: AgentGraph,
        triggered_by: TriggerInfo,
        trigger_id: Option<TriggerId>,
        now: i64,
    ) -> RunRecord {
        RunRecord {
            id: RunId::new(),
            agent_id: agent.id,
            user_id: agent.user_id,
            status: RunStatus::Queued,
            sources,
            multi_input,
            callback_url,
            graph,
            triggered_by,
            inputs: vec![],
            outputs: vec![],
            errors: vec![],
            status_message: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            attempt: 1,
            cancel_requested: false,
            trigger_id,
        }
    }

    /// The jobs of this run: lists of source indexes processed together.
    pub fn jobs(&self) -> Vec<Vec<usize>> {
        if self.multi_input {
            vec![(0..self.sources.len()).collect()]
        } else {
            (0..self.sources.len()).map(|i| vec![i]).collect()
        }
    }
}

/// The engine's write when editing begins.
#[derive(Clone, Debug)]
pub struct RunStarted {
    pub id: RunId,
    pub owner: String,
    pub inputs: Vec<IngestedInput>,
    pub errors: Vec<InputError>,
    pub status_message: Option<String>,
    pub at: i64,
}

/// The engine's write at the end of a run.
#[derive(Clone, Debug)]
pub struct RunFinished {
    pub id: RunId,
    pub owner: String,
    pub status: FinishedStatus,
    /// The run was cancelled: API status `cancelled`, webhook `cancelled: true`.
    pub cancelled: bool,
    pub outputs: Vec<OutputRef>,
    pub errors: Vec<InputError>,
    pub status_message: Option<String>,
    pub at: i64,
}

/// What a run's owner learns when it checks in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunControl {
    /// This owner still holds the lease.
    pub held: bool,
    pub cancel_requested: bool,
}

/// Filters of the run lists.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub agent_id: Option<AgentId>,
    pub trigger_id: Option<TriggerId>,
    pub statuses: Vec<RunStatus>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before: Option<RunId>,
    pub limit: u32,
}

/// An event for the outbox and the URLs it goes to (possibly none).
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: EventId,
    pub user_id: UserId,
    pub run_id: Option<RunId>,
    pub body: EventBody,
    pub destinations: Vec<String>,
    pub attempts_allowed: u32,
    pub created_at: i64,
}

/// A delivery handed to a dispatcher, with what it needs to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub url: String,
    /// `scheme://host:port` of `url`.
    pub destination: String,
    pub body: EventBody,
    pub attempt_count: u32,
    pub attempts_allowed: u32,
    /// Which end of its destination's due deliveries the claim took it from.
    pub lane: ClaimLane,
}

/// A claim takes part of each destination's room from its oldest due
/// deliveries and part from its newest, so neither a backlog nor a stream of
/// fresh events holds the other back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimLane {
    /// Longest due (a backlog drains in order).
    Oldest,
    /// Most recently due (fresh events do not queue behind a backlog).
    Newest,
}

/// Delivery states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// What becomes of a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextState {
    Succeeded,
    RetryAt(i64),
    Failed,
}

#[derive(Clone, Debug)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub flag: String,
    pub run_id: Option<RunId>,
    pub url: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
}

/// One attempt as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    /// Error class (`timeout`, `connect`, … `status`) or none on success.
    pub error: Option<String>,
    pub error_detail: Option<String>,
    pub response_snippet: Option<String>,
    pub truncated: bool,
    /// The request's headers as sent, secrets masked.
    pub request_headers: Vec<(String, String)>,
    /// The response's headers (capped in number and length).
    pub response_headers: Vec<(String, String)>,
    /// The reason phrase when the receiver sent a non-standard one.
    pub reason: Option<String>,
}

/// An attempt to record, with the delivery's next state.
#[derive(Clone, Debug)]
pub struct RecordedAttempt {
    pub delivery: DeliveryId,
    pub attempt: AttemptRecord,
    pub next: NextState,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub run_id: Option<RunId>,
    pub flag: Option<String>,
    pub before: Option<DeliveryId>,
    pub limit: u32,
}

/// How many more attempts each destination may start now.
#[derive(Clone, Debug, Default)]
pub struct DestinationRoom {
    /// Room of a destination with nothing in flight.
    pub per_destination: u32,
    /// Destinations with attempts in flight, and their remaining room (0 = saturated).
    pub busy: std::collections::HashMap<String, u32>,
}

/// The outbox at a glance.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutboxStats {
    pub pending: u64,
    pub oldest_pending_created_at: Option<i64>,
}

/// What a cancel request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued and is now cancelled.
    Cancelled,
    /// The run is being worked on; its owner will stop it.
    Requested,
}

/// A schedule's settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ScheduleSpec {
    pub cron_expression: String,
    pub timezone: String,
    pub video_urls: Vec<String>,
    /// Finalized uploads each run works on, after the URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub video_ids: Vec<VideoId>,
    #[serde(default)]
    pub update_params: Option<serde_json::Map<String, Value>>,
}

/// What a trigger watches.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerKind {
    Schedule(ScheduleSpec),
    /// Watches YouTube channels (rows of their own); one trigger per
    /// distinct filter per agent.
    Youtube {
        filter: YoutubeFilter,
    },
}

impl TriggerKind {
    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::Schedule(_) => "schedule",
            TriggerKind::Youtube { .. } => "youtube",
        }
    }
}

/// Which new videos of a YouTube trigger start runs: inclusive bounds on the
/// real duration in seconds. No bounds = every video.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    serde::Serialize,
    serde::Deserialize,
    PartialEq,
    Eq,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct YoutubeFilter {
    pub min_seconds: Option<u64>,
    pub max_seconds: Option<u64>,
}

impl YoutubeFilter {
    /// Whether a duration must be known to decide.
    pub fn is_empty(&self) -> bool {
        self.min_seconds.is_none() && self.max_seconds.is_none()
    }

    /// Whether `seconds` lies within the bounds (both inclusive).
    pub fn admits(&self, seconds: f64) -> bool {
        self.min_seconds.is_none_or(|min| seconds >= min as f64)
            && self.max_seconds.is_none_or(|max| seconds <= max as f64)
    }
}

/// How an add call changes the trigger's callback URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackChange {
    /// Field omitted: keep what the trigger has (none for a new trigger).
    Keep,
    /// A string replaces it; `None` (JSON `null`) clears it.
    Set(Option<String>),
}

/// Channels to add to an agent's YouTube trigger for `filter`.
#[derive(Clone, Debug)]
pub struct YoutubeAdd {
    pub user_id: UserId,
    pub agent_id: AgentId,
    /// Validated `UC…` ids, without duplicates.
    pub channels: Vec<String>,
    pub filter: YoutubeFilter,
    pub callback: CallbackChange,
    /// The id to use if a new trigger is needed.
    pub new_trigger_id: TriggerId,
    pub now: i64,
}

/// A watched channel of an agent, as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YoutubeChannelRecord {
    pub trigger_id: TriggerId,
    pub channel_id: String,
    pub added_at: i64,
    pub next_poll_at: i64,
    pub last_poll_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A channel a poller claimed, with what it needs from its trigger.
#[derive(Clone, Debug)]
pub struct ClaimedChannel {
    pub trigger_id: TriggerId,
    pub user_id: UserId,
    pub agent_id: AgentId,
    pub channel_id: String,
    /// The back-catalogue was recorded; later videos are new.
    pub primed: bool,
    /// When the channel was added: videos published after it are new even
    /// if the first poll only succeeds later.
    pub added_at: i64,
    pub filter: YoutubeFilter,
    pub callback_url: Option<String>,
}

/// What happened to one new video.
#[derive(Clone, Debug)]
pub enum VideoOutcome {
    /// It starts this run.
    Fired(Box<RunRecord>),
    /// No run, for this reason (filter, unknown duration, …).
    Skipped(String),
}

/// One video a poller decided on; recording it is idempotent per
/// (agent, channel, video).
#[derive(Clone, Debug)]
pub struct YoutubeVideo {
    pub agent_id: AgentId,
    pub channel_id: String,
    pub video_id: String,
    /// The poller's lease owner: nothing is written without the lease.
    pub owner: String,
    pub outcome: VideoOutcome,
    pub at: i64,
}

/// The end of one poll of a channel, releasing its lease.
#[derive(Clone, Debug)]
pub struct YoutubePoll {
    pub agent_id: AgentId,
    pub channel_id: String,
    pub owner: String,
    /// The feed error (or a note such as a skipped video); `None` clears it.
    pub error: Option<String>,
    /// First successful poll: the video ids already in the feed, recorded
    /// as seen without runs.
    pub baseline: Option<Vec<String>>,
    pub next_poll_at: i64,
    pub at: i64,
}

/// A trigger of an agent and what the scheduler knows about it.
#[derive(Clone, Debug)]
pub struct TriggerRecord {
    pub id: TriggerId,
    pub user_id: UserId,
    pub agent_id: AgentId,
    pub kind: TriggerKind,
    pub callback_url: Option<String>,
    pub created_at: i64,
    pub next_run_at: Option<i64>,
    pub last_fired_at: Option<i64>,
    pub last_poll_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A slot a scheduler wants to fire: the run to create and where the
/// schedule goes next. Firing is idempotent per (trigger, slot).
#[derive(Clone, Debug)]
pub struct ScheduleFire {
    pub trigger_id: TriggerId,
    pub slot_at: i64,
    pub next_run_at: Option<i64>,
    pub run: RunRecord,
}

/// Where an upload is in its three steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// An upload URL was issued; no file has arrived (that Tessera saw).
    Pending,
    /// Tessera received the file; it is not checked yet.
    Uploaded,
    /// Probed and within the limits: usable in `video_ids`.
    Finalized,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Pending => "pending",
            UploadStatus::Uploaded => "uploaded",
            UploadStatus::Finalized => "finalized",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => UploadStatus::Pending,
            "uploaded" => UploadStatus::Uploaded,
            "finalized" => UploadStatus::Finalized,
            _ => return None,
        })
    }
}

/// An uploaded (or announced) video.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadRecord {
    pub id: VideoId,
    pub user_id: UserId,
    /// Where the file lives in the object store.
    pub object_key: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub status: UploadStatus,
    pub size_bytes: Option<u64>,
    /// Known once finalized.
    pub media: Option<UploadMedia>,
    pub created_at: i64,
    /// When the upload policy stops accepting the file.
    pub expires_at: i64,
    pub uploaded_at: Option<i64>,
    pub finalized_at: Option<i64>,
}

/// What finalizing learned about an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadMedia {
    pub duration_ms: u64,
    pub width: u32,
    pub height: u32,
}
