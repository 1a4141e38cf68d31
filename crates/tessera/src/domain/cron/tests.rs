//! Tests of schedules through the public API: syntax and errors, then slots
//! in UTC and across the 2026 DST transitions of Europe and the US.

mod slots;
mod syntax;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;

pub(super) fn schedule(expression: &str, time_zone: &str) -> Schedule {
    Schedule::parse(expression, time_zone).expect("expression parses")
}

pub(super) fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("test timestamp is RFC 3339")
}

pub(super) fn error(expression: &str) -> String {
    match Schedule::parse(expression, DEFAULT_TIME_ZONE) {
        Ok(schedule) => panic!("`{expression}` should be refused, parsed as {schedule:?}"),
        Err(error) => error.to_string(),
    }
}

/// The next `count` slots after `after`, on the schedule's wall clock with
/// its offset, e.g. `2026-03-08 03:00:00 -04:00`.
pub(super) fn next_slots(schedule: &Schedule, after: &str, count: usize) -> Vec<String> {
    let mut slots = Vec::with_capacity(count);
    let mut cursor = utc(after);
    for _ in 0..count {
        cursor = schedule
            .next_after(cursor)
            .expect("schedule has a next slot");
        slots.push(wall(schedule, cursor));
    }
    slots
}

pub(super) fn wall(schedule: &Schedule, instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&schedule.time_zone)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// Checks, at many instants from `from` over `hours`, that `next_after` and
/// `latest_at_or_before` describe the same set of slots.
pub(super) fn assert_consistent(schedule: &Schedule, from: &str, hours: i64) {
    let start = utc(from);
    let mut at = start;
    while at < start + TimeDelta::hours(hours) {
        let next = schedule.next_after(at).expect("a next slot");
        assert!(next > at, "next_after({at}) = {next} is not after it");
        assert_eq!(
            schedule.latest_at_or_before(next),
            Some(next),
            "slot {next}"
        );
        let before_next = schedule.latest_at_or_before(next - TimeDelta::seconds(1));
        assert!(
            before_next.is_none_or(|slot| slot <= at),
            "a slot {before_next:?} lies between {at} and next_after = {next}"
        );
        at += TimeDelta::minutes(7);
    }
}
