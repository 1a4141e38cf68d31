//! Receive Tessera's webhooks: the payload types (the same types the server
//! sends, so it cannot send a shape this crate does not parse) and signature
//! verification for both schemes Tessera uses:
//!
//! - `X-Mosaic-Signature`: the account's webhook secret, verbatim (the hosted
//!   Mosaic service's scheme), compared in constant time;
//! - Standard Webhooks: `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature` (HMAC-SHA256 under a `whsec_…` key).

pub mod payload;
pub mod verify;

pub use payload::*;
pub use verify::*;
