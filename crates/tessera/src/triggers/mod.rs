//! Triggers that start runs without an API call: pure building blocks first
//! (YouTube feed parsing); the poller and scheduler build on them.

pub mod feed;
pub mod scheduler;
