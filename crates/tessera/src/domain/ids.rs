//! Typed identifiers. On the wire every id is a UUID string (as the seed
//! specifies); inside, each kind has its own type so they cannot be mixed up.
//! New ids are UUIDv7: time-ordered, so they double as pagination cursors.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        /// On the wire: a UUID string.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{SchemaFormat, Type};
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

id_type!(
    /// A user: owns keys, agents, runs and deliveries.
    UserId,
    /// One API key (the key itself is never stored, only its hash).
    ApiKeyId,
    AgentId,
    RunId,
    /// A webhook event; sent as `webhook-id`, the same on every attempt.
    EventId,
    /// One (event, destination URL) pair.
    DeliveryId,
    /// A rendered output, usable later as a `node_render_id`.
    RenderId,
    /// A YouTube or schedule trigger of an agent.
    TriggerId,
    /// An uploaded video (`video_id` of the uploads flow, usable in `video_ids`).
    VideoId,
);

/// `mk_` followed by 20–128 ASCII letters or digits.
pub fn looks_like_api_key(s: &str) -> bool {
    s.strip_prefix("mk_").is_some_and(|rest| {
        (20..=128).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_uuid_string() {
        let id = RunId::new();
        assert_eq!(id.to_string().parse::<RunId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    }

    #[test]
    fn newer_ids_sort_after_older_ones() {
        let a = RunId::new();
        let b = RunId::new();
        assert!(b > a);
    }

    #[test]
    fn api_key_shape_is_checked() {
        assert!(looks_like_api_key("mk_0123456789abcdefghijKLMN"));
        assert!(!looks_like_api_key("mk_short"));
        assert!(!looks_like_api_key("sk_0123456789abcdefghijKLMN"));
        assert!(!looks_like_api_key("mk_0123456789abcdefghij KLMN"));
    }
}
