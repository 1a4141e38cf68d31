//! The webhook payloads, exactly as Tessera sends them: the shapes of the
//! hosted Mosaic service's webhooks (`WebhookPayload` and friends, same field
//! names, types and enum values) plus the documented additive fields
//! (`status_message`, `outputs[].id`, `errors`, `cancelled`).
//!
//! Each payload struct carries its `flag` (and each trigger its `type`) as a
//! one-value field, so a struct alone serialises to the full wire shape and
//! the unions ([`WebhookPayload`], [`TriggerInfo`]) dispatch on that field
//! with clear errors.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A string field that has exactly one allowed value (`flag`, `type`,
/// `status: "running"`, `run_id: "test"`).
macro_rules! literal {
    ($(#[$doc:meta])* $name:ident = $value:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl $name {
            pub const VALUE: &'static str = $value;
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                if s == $value {
                    Ok($name)
                } else {
                    Err(de::Error::invalid_value(
                        de::Unexpected::Str(&s),
                        &concat!("\"", $value, "\""),
                    ))
                }
            }
        }

        #[cfg(feature = "schema")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$value]))
                    .into()
            }
        }

        #[cfg(feature = "schema")]
        impl utoipa::ToSchema for $name {}
    };
}

literal!(
    /// `"RUN_STARTED"`
    RunStartedFlag = "RUN_STARTED"
);
literal!(
    /// `"RUN_FINISHED"`
    RunFinishedFlag = "RUN_FINISHED"
);
literal!(
    /// `"TEST"`
    TestFlag = "TEST"
);
literal!(
    /// `"running"`, the status of every `RUN_STARTED`.
    RunningStatus = "running"
);
literal!(
    /// `"test"`, the `run_id` of every `TEST` webhook.
    TestRunId = "test"
);
literal!(
    /// `"youtube"`
    YouTubeType = "youtube"
);
literal!(
    /// `"schedule"`
    ScheduleType = "schedule"
);
literal!(
    /// `"manual"`
    ManualType = "manual"
);

/// The body of one webhook request, told apart by its `flag`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum WebhookPayload {
    RunStarted(RunStartedWebhook),
    RunFinished(RunFinishedWebhook),
    Test(TestWebhook),
}

impl WebhookPayload {
    /// The `flag`: `RUN_STARTED`, `RUN_FINISHED` or `TEST`.
    pub fn flag(&self) -> &'static str {
        match self {
            WebhookPayload::RunStarted(_) => RunStartedFlag::VALUE,
            WebhookPayload::RunFinished(_) => RunFinishedFlag::VALUE,
            WebhookPayload::Test(_) => TestFlag::VALUE,
        }
    }
}

/// Parse a webhook body (verify its signature first).
pub fn parse(body: &[u8]) -> Result<WebhookPayload, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Deserialize `value` as the variant its tag field names.
fn by_tag<E: de::Error>(value: &Value, tag: &'static str) -> Result<String, E> {
    match value.get(tag) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(E::custom(format!("`{tag}` must be a string"))),
        None => Err(E::missing_field(tag)),
    }
}

fn variant<T: de::DeserializeOwned, E: de::Error>(value: Value) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}

impl<'de> Deserialize<'de> for WebhookPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match by_tag::<D::Error>(&value, "flag")?.as_str() {
            RunStartedFlag::VALUE => variant(value).map(WebhookPayload::RunStarted),
            RunFinishedFlag::VALUE => variant(value).map(WebhookPayload::RunFinished),
            TestFlag::VALUE => variant(value).map(WebhookPayload::Test),
            other => Err(de::Error::unknown_variant(
                other,
                &["RUN_STARTED", "RUN_FINISHED", "TEST"],
            )),
        }
    }
}

/// Sent when a run starts processing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RunStartedWebhook {
    pub flag: RunStartedFlag,
    pub agent_id: String,
    pub run_id: String,
    pub status: RunningStatus,
    pub inputs: Vec<VideoInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(nullable = false))]
    pub triggered_by: Option<TriggerInfo>,
    /// Additive: a human sentence about the run's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(nullable = false))]
    pub status_message: Option<String>,
    /// Additive: inputs that already failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InputError>,
}

/// Sent when a run ends, whatever the outcome.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RunFinishedWebhook {
    pub flag: RunFinishedFlag,
    pub agent_id: String,
    pub run_id: String,
    pub status: FinishedStatus,
    pub inputs: Vec<VideoInput>,
    pub outputs: Vec<VideoOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(nullable = false))]
    pub triggered_by: Option<TriggerInfo>,
    /// Additive: a human sentence about the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(nullable = false))]
    pub status_message: Option<String>,
    /// Additive: why inputs produced nothing (or not everything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InputError>,
    /// Additive: present (and true) only for cancelled runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

/// Sent by "send test webhook".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TestWebhook {
    pub flag: TestFlag,
    pub run_id: TestRunId,
    /// ISO 8601 UTC.
    pub timestamp: String,
    pub message: String,
    pub user_id: String,
    /// An object (`{"description", "status": "test"}` from Tessera).
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub test_data: Value,
}

/// An input video of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct VideoInput {
    /// Signed URL, valid for one hour.
    pub video_url: String,
    /// Signed URL of a JPEG thumbnail, valid for one hour.
    pub thumbnail_url: String,
}

/// A rendered output of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct VideoOutput {
    /// Additive: the render id (usable as an input of later runs). Tessera
    /// always sends it; optional so payloads of the seed's shape parse too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(nullable = false))]
    pub id: Option<String>,
    /// Signed URL, valid for one hour.
    pub video_url: String,
    /// Signed URL of a JPEG thumbnail, valid for one hour.
    pub thumbnail_url: String,
    /// ISO 8601 UTC.
    pub completed_at: String,
}

/// Why one input produced nothing, or not everything.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct InputError {
    /// 0-based, in request order.
    pub input_index: usize,
    /// The input as given (URL or render id).
    pub source: String,
    pub message: String,
    /// The node that failed, when the input was ingested but a render failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(nullable = false))]
    pub node_id: Option<String>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FinishedStatus {
    Completed,
    PartialComplete,
    Failed,
}

impl FinishedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishedStatus::Completed => "completed",
            FinishedStatus::PartialComplete => "partial_complete",
            FinishedStatus::Failed => "failed",
        }
    }
}

/// What started a run, told apart by its `type`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum TriggerInfo {
    YouTube(YouTubeTriggerInfo),
    Schedule(ScheduleTriggerInfo),
    Manual(ManualTriggerInfo),
}

impl<'de> Deserialize<'de> for TriggerInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match by_tag::<D::Error>(&value, "type")?.as_str() {
            YouTubeType::VALUE => variant(value).map(TriggerInfo::YouTube),
            ScheduleType::VALUE => variant(value).map(TriggerInfo::Schedule),
            ManualType::VALUE => variant(value).map(TriggerInfo::Manual),
            other => Err(de::Error::unknown_variant(
                other,
                &["youtube", "schedule", "manual"],
            )),
        }
    }
}

/// A new video on a watched YouTube channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct YouTubeTriggerInfo {
    #[serde(rename = "type")]
    pub kind: YouTubeType,
    pub channel_id: String,
    pub video_id: String,
    pub video_title: String,
    pub video_url: String,
    /// ISO 8601 UTC.
    pub triggered_at: String,
    pub trigger_id: String,
}

/// A slot of a cron schedule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ScheduleTriggerInfo {
    #[serde(rename = "type")]
    pub kind: ScheduleType,
    /// The slot, ISO 8601 UTC.
    pub scheduled_at: String,
    pub schedule_id: String,
    pub cron_expression: String,
}

/// Started through the API or the dashboard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ManualTriggerInfo {
    #[serde(rename = "type")]
    pub kind: ManualType,
    pub source: ManualSource,
    pub user_id: String,
    /// ISO 8601 UTC.
    pub triggered_at: String,
}

/// Where a manual run was started.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ManualSource {
    Api,
    Ui,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_parse_by_flag_and_round_trip() {
        let started = json!({
            "flag": "RUN_STARTED", "agent_id": "a", "run_id": "r", "status": "running",
            "inputs": [{"video_url": "https://x/v", "thumbnail_url": "https://x/t"}],
            "triggered_by": {"type": "manual", "source": "api", "user_id": "u",
                             "triggered_at": "2026-12-03T10:00:00.000Z"}
        });
        let parsed = parse(started.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.flag(), "RUN_STARTED");
        let WebhookPayload::RunStarted(p) = &parsed else {
            panic!("{parsed:?}")
        };
        assert!(matches!(
            p.triggered_by,
            Some(TriggerInfo::Manual(ManualTriggerInfo {
                source: ManualSource::Api,
                ..
            }))
        ));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), started);

        let test = json!({"flag": "TEST", "run_id": "test", "timestamp": "t", "message": "m",
                          "user_id": "u", "test_data": {"status": "test"}});
        assert_eq!(
            serde_json::to_value(parse(test.to_string().as_bytes()).unwrap()).unwrap(),
            test
        );
    }

    #[test]
    fn wrong_flags_types_and_literals_are_refused_clearly() {
        let err = parse(br#"{"flag": "RUN_PAUSED"}"#).unwrap_err().to_string();
        assert!(err.contains("RUN_PAUSED"), "{err}");
        let err = parse(br#"{"run_id": "test"}"#).unwrap_err().to_string();
        assert!(err.contains("flag"), "{err}");
        let bad_status = json!({"flag": "RUN_STARTED", "agent_id": "a", "run_id": "r",
                                "status": "done", "inputs": []});
        assert!(parse(bad_status.to_string().as_bytes()).is_err());
        let bad_final = json!({"flag": "RUN_FINISHED", "agent_id": "a", "run_id": "r",
                               "status": "finished", "inputs": [], "outputs": []});
        assert!(parse(bad_final.to_string().as_bytes()).is_err());
        let bad_trigger = json!({"flag": "RUN_STARTED", "agent_id": "a", "run_id": "r",
                                 "status": "running", "inputs": [],
                                 "triggered_by": {"type": "webhook"}});
        let err = parse(bad_trigger.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("webhook"), "{err}");
    }

    #[test]
    fn additive_fields_are_optional_and_omitted_when_empty() {
        let finished = json!({"flag": "RUN_FINISHED", "agent_id": "a", "run_id": "r",
                              "status": "partial_complete", "inputs": [], "outputs": []});
        let parsed = parse(finished.to_string().as_bytes()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), finished);
    }
}
