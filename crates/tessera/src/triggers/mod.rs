//! Triggers that start runs without an API call: the scheduler (cron
//! schedules) and the YouTube channel poller, with the safe Atom parser the
//! poller relies on.

pub mod feed;
pub mod scheduler;
pub mod youtube;
