//! Webhook payloads: the wire shapes come from the `tessera-webhook` crate
//! (the crate receivers use, so the server cannot send a shape it does not
//! parse); this module keeps the stored event ([`EventBody`]) they are
//! rendered from.
//!
//! Events are stored with object *keys*, never URLs, because signed file URLs
//! must be fresh on every attempt: [`EventBody::render`] turns keys into URLs
//! at send time.

use serde::{Deserialize, Serialize};
use serde_json::Value;
pub use tessera_webhook::{
    FinishedStatus, InputError, ManualSource, ManualTriggerInfo, RunFinishedWebhook,
    RunStartedWebhook, ScheduleTriggerInfo, TestWebhook, TriggerInfo, VideoInput, VideoOutput,
    WebhookPayload, YouTubeTriggerInfo,
};

use super::ids::{AgentId, RenderId, RunId, UserId};

/// PRODUCT.md §3: every input produced all its outputs → completed; some
/// outputs but not all inputs succeeded → partial; nothing produced → failed.
pub fn finished_status(
    inputs_total: usize,
    inputs_succeeded: usize,
    outputs: usize,
) -> FinishedStatus {
    if outputs == 0 {
        FinishedStatus::Failed
    } else if inputs_succeeded == inputs_total {
        FinishedStatus::Completed
    } else {
        FinishedStatus::PartialComplete
    }
}

/// A stored file pair: object keys of a video and its thumbnail.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileRef {
    pub video_key: String,
    pub thumbnail_key: String,
}

/// A rendered output as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputRef {
    pub id: RenderId,
    pub files: FileRef,
    pub completed_at: chrono::DateTime<chrono::Utc>,
    /// Which input (0-based, in request order) and render node produced it.
    pub input_index: usize,
    pub render_node: String,
}

/// An event as stored in the outbox.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    RunStarted {
        agent_id: AgentId,
        run_id: RunId,
        inputs: Vec<FileRef>,
        triggered_by: Option<TriggerInfo>,
        #[serde(default)]
        status_message: Option<String>,
        errors: Vec<InputError>,
    },
    RunFinished {
        agent_id: AgentId,
        run_id: RunId,
        status: FinishedStatus,
        inputs: Vec<FileRef>,
        outputs: Vec<OutputRef>,
        triggered_by: Option<TriggerInfo>,
        status_message: Option<String>,
        errors: Vec<InputError>,
        #[serde(default)]
        cancelled: bool,
    },
    Test {
        timestamp: chrono::DateTime<chrono::Utc>,
        user_id: UserId,
        message: String,
        test_data: Value,
    },
}

impl EventBody {
    /// The seed's `flag` of this event.
    pub fn flag(&self) -> &'static str {
        match self {
            EventBody::RunStarted { .. } => "RUN_STARTED",
            EventBody::RunFinished { .. } => "RUN_FINISHED",
            EventBody::Test { .. } => "TEST",
        }
    }

    /// Render the wire payload, turning object keys into URLs with `sign`.
    pub fn render(&self, sign: &dyn Fn(&str) -> String) -> WebhookPayload {
        let inputs = |refs: &[FileRef]| {
            refs.iter()
                .map(|f| VideoInput {
                    video_url: sign(&f.video_key),
                    thumbnail_url: sign(&f.thumbnail_key),
                })
                .collect()
        };
        match self {
            EventBody::RunStarted {
                agent_id,
                run_id,
                inputs: ins,
                triggered_by,
                status_message,
                errors,
            } => WebhookPayload::RunStarted(RunStartedWebhook {
                flag: Default::default(),
                agent_id: agent_id.to_string(),
                run_id: run_id.to_string(),
                status: Default::default(),
                inputs: inputs(ins),
                triggered_by: triggered_by.clone(),
                status_message: status_message.clone(),
                errors: errors.clone(),
            }),
            EventBody::RunFinished {
                agent_id,
                run_id,
                status,
                inputs: ins,
                outputs,
                triggered_by,
                status_message,
                errors,
                cancelled,
            } => WebhookPayload::RunFinished(RunFinishedWebhook {
                flag: Default::default(),
                agent_id: agent_id.to_string(),
                run_id: run_id.to_string(),
                status: *status,
                inputs: inputs(ins),
                outputs: outputs
                    .iter()
                    .map(|o| VideoOutput {
                        id: Some(o.id.to_string()),
                        video_url: sign(&o.files.video_key),
                        thumbnail_url: sign(&o.files.thumbnail_key),
                        completed_at: iso8601(o.completed_at),
                    })
                    .collect(),
                triggered_by: triggered_by.clone(),
                status_message: status_message.clone(),
                errors: errors.clone(),
                cancelled: *cancelled,
            }),
            EventBody::Test {
                timestamp,
                user_id,
                message,
                test_data,
            } => WebhookPayload::Test(TestWebhook {
                flag: Default::default(),
                run_id: Default::default(),
                timestamp: iso8601(*timestamp),
                message: message.clone(),
                user_id: user_id.to_string(),
                test_data: test_data.clone(),
            }),
        }
    }
}

/// ISO 8601 UTC with millisecond precision and a `Z`, as every timestamp on the wire.
pub fn iso8601(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_status_follows_the_product_rules() {
        assert_eq!(finished_status(2, 2, 2), FinishedStatus::Completed);
        assert_eq!(finished_status(2, 1, 1), FinishedStatus::PartialComplete);
        assert_eq!(finished_status(2, 0, 0), FinishedStatus::Failed);
        assert_eq!(finished_status(0, 0, 0), FinishedStatus::Failed);
    }

    #[test]
    fn run_started_renders_with_the_seed_fields_and_fresh_urls() {
        let body = EventBody::RunStarted {
            agent_id: AgentId::new(),
            run_id: RunId::new(),
            inputs: vec![FileRef {
                video_key: "a.mp4".into(),
                thumbnail_key: "a.jpg".into(),
            }],
            triggered_by: None,
            status_message: None,
            errors: vec![],
        };
        let json = serde_json::to_value(body.render(&|k| format!("https://x/{k}"))).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["agent_id", "flag", "inputs", "run_id", "status"]);
        assert_eq!(json["flag"], "RUN_STARTED");
        assert_eq!(json["status"], "running");
        assert_eq!(json["inputs"][0]["video_url"], "https://x/a.mp4");
    }

    #[test]
    fn test_webhook_has_the_literal_test_run_id() {
        let body = EventBody::Test {
            timestamp: chrono::Utc::now(),
            user_id: UserId::new(),
            message: "hi".into(),
            test_data: serde_json::json!({}),
        };
        let json = serde_json::to_value(body.render(&|k| k.to_string())).unwrap();
        assert_eq!(json["run_id"], "test");
        assert_eq!(json["flag"], "TEST");
    }
}
