//! Pure types and rules of the product. Nothing in here performs IO.

pub mod address;
pub mod cron;
pub mod graph;
pub mod ids;
pub mod payload;
pub mod retry;
pub mod signing;
pub mod upload_policy;
