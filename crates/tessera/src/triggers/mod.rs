//! Triggers that start runs without an API call: cron schedules and YouTube
//! (YouTube feed parsing), then the roles built on them — the scheduler
//! (cron schedules) and the YouTube channel poller.

pub mod feed;
pub mod scheduler;
pub mod youtube;
