//! Tessera: a self-hosted server that runs video agents (ffmpeg workflows) on
//! videos and tells the caller's systems about each run through durable,
//! Mosaic-compatible webhooks.
//!
//! Layout (see ARCHITECTURE.md for the invariants):
//! - [`config`]: one typed configuration from flags, `TESSERA_*` env and TOML.
//! - [`app`]: builds the application from the config and runs the enabled roles.
//! - [`domain`]: pure types and rules (ids, graphs, address policy, signatures,
//!   retry schedule, payload shapes). No IO.
//! - [`store`]: every SQL statement, behind the [`store::Store`] trait.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`delivery`]: the webhook dispatcher; the only sender of webhooks.
//! - [`media`]: ffprobe/ffmpeg; the only module that spawns external processes.
//! - [`engine`]: the run engine: claims runs, ingests inputs, renders outputs.
//! - [`net`]: the outbound HTTP client with the address policy enforced at connect time.
//! - [`objects`]: the object store and signed file URLs.
//! - [`triggers`]: the scheduler and the YouTube channel poller (runs without an API call).
//! - [`metrics`]: Prometheus counters and gauges.

pub mod api;
pub mod app;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod listen;
pub mod media;
pub mod metrics;
pub mod net;
pub mod objects;
pub mod store;
pub mod triggers;
