//! Slots in UTC and across the DST transitions of 2026: US spring 2026-03-08,
//! EU spring 2026-03-29, EU fall 2026-10-25, US fall 2026-11-01.

use super::*;

const NEW_YORK: &str = "America/New_York";
const PARIS: &str = "Europe/Paris";

#[test]
fn next_after_is_strictly_after_even_exactly_on_a_slot() {
    let daily = schedule("0 12 * * *", "UTC");
    assert_eq!(
        daily.next_after(utc("2026-01-05T12:00:00Z")),
        Some(utc("2026-01-06T12:00:00Z"))
    );
    assert_eq!(
        daily.next_after(utc("2026-01-05T11:59:59.999Z")),
        Some(utc("2026-01-05T12:00:00Z"))
    );
    assert_eq!(
        daily.next_after(utc("2026-01-05T12:00:00.001Z")),
        Some(utc("2026-01-06T12:00:00Z"))
    );
}

#[test]
fn a_zone_moves_the_instant_with_the_season() {
    let nine = schedule("0 9 * * *", PARIS);
    assert_eq!(
        nine.next_after(utc("2026-01-05T12:00:00Z")),
        Some(utc("2026-01-06T08:00:00Z"))
    );
    assert_eq!(
        nine.next_after(utc("2026-07-06T12:00:00Z")),
        Some(utc("2026-07-07T07:00:00Z"))
    );
}

#[test]
fn two_am_in_new_york_on_spring_forward_day_fires_when_clocks_jump_to_three() {
    let slots = next_slots(&schedule("0 2 * * *", NEW_YORK), "2026-03-06T12:00:00Z", 3);
    assert_eq!(
        slots,
        [
            "2026-03-07 02:00:00 -05:00",
            "2026-03-08 03:00:00 -04:00",
            "2026-03-09 02:00:00 -04:00",
        ]
    );
}

#[test]
fn times_inside_the_spring_gap_collapse_into_one_slot() {
    // 02:00 and 02:30 do not exist; both fire once, together with 03:00.
    let slots = next_slots(
        &schedule("*/30 * * * *", NEW_YORK),
        "2026-03-08T05:45:00Z",
        4,
    );
    assert_eq!(
        slots,
        [
            "2026-03-08 01:00:00 -05:00",
            "2026-03-08 01:30:00 -05:00",
            "2026-03-08 03:00:00 -04:00",
            "2026-03-08 03:30:00 -04:00",
        ]
    );
}

#[test]
fn half_past_two_in_paris_on_spring_forward_day_fires_at_three() {
    let slots = next_slots(&schedule("30 2 * * *", PARIS), "2026-03-27T12:00:00Z", 3);
    assert_eq!(
        slots,
        [
            "2026-03-28 02:30:00 +01:00",
            "2026-03-29 03:00:00 +02:00",
            "2026-03-30 02:30:00 +02:00",
        ]
    );
}

#[test]
fn the_seconds_form_also_fires_at_the_end_of_the_gap() {
    let slots = next_slots(
        &schedule("15 30 2 * * *", NEW_YORK),
        "2026-03-08T00:00:00Z",
        2,
    );
    assert_eq!(
        slots,
        ["2026-03-08 03:00:00 -04:00", "2026-03-09 02:30:15 -04:00"]
    );
}

#[test]
fn half_past_one_in_new_york_on_fall_back_day_fires_once() {
    let half_past_one = schedule("30 1 * * *", NEW_YORK);
    let slots = next_slots(&half_past_one, "2026-10-31T12:00:00Z", 2);
    assert_eq!(
        slots,
        ["2026-11-01 01:30:00 -04:00", "2026-11-02 01:30:00 -05:00"]
    );
    // From inside the repeated hour, the second 01:30 is not a slot.
    assert_eq!(
        half_past_one.next_after(utc("2026-11-01T06:10:00Z")),
        Some(utc("2026-11-02T06:30:00Z"))
    );
}

#[test]
fn half_past_two_in_paris_on_fall_back_day_fires_once() {
    let slots = next_slots(&schedule("30 2 * * *", PARIS), "2026-10-24T12:00:00Z", 2);
    assert_eq!(
        slots,
        ["2026-10-25 02:30:00 +02:00", "2026-10-26 02:30:00 +01:00"]
    );
}

#[test]
fn an_hourly_schedule_does_not_repeat_the_hour_that_repeats_on_the_clock() {
    let slots = next_slots(&schedule("0 * * * *", NEW_YORK), "2026-11-01T03:30:00Z", 4);
    assert_eq!(
        slots,
        [
            "2026-11-01 00:00:00 -04:00",
            "2026-11-01 01:00:00 -04:00",
            "2026-11-01 02:00:00 -05:00",
            "2026-11-01 03:00:00 -05:00",
        ]
    );
}

#[test]
fn an_every_second_schedule_resumes_after_the_repeated_hour() {
    let every_second = schedule("* * * * * *", NEW_YORK);
    assert_eq!(
        every_second.next_after(utc("2026-11-01T05:59:59Z")),
        Some(utc("2026-11-01T07:00:00Z"))
    );
    assert_eq!(
        every_second.latest_at_or_before(utc("2026-11-01T06:30:00Z")),
        Some(utc("2026-11-01T05:59:59Z"))
    );
}

#[test]
fn latest_at_or_before_finds_the_first_occurrence_from_inside_the_repeated_hour() {
    let half_past_one = schedule("30 1 * * *", NEW_YORK);
    assert_eq!(
        half_past_one.latest_at_or_before(utc("2026-11-01T06:45:00Z")),
        Some(utc("2026-11-01T05:30:00Z"))
    );
    assert_eq!(
        half_past_one.latest_at_or_before(utc("2026-11-01T05:30:00Z")),
        Some(utc("2026-11-01T05:30:00Z"))
    );
}

#[test]
fn latest_at_or_before_sees_the_gap_slot_at_the_jump() {
    let two_am = schedule("0 2 * * *", NEW_YORK);
    assert_eq!(
        two_am.latest_at_or_before(utc("2026-03-08T07:30:00Z")),
        Some(utc("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        two_am.latest_at_or_before(utc("2026-03-08T06:59:59Z")),
        Some(utc("2026-03-07T07:00:00Z"))
    );
}

#[test]
fn next_and_latest_agree_around_every_2026_transition() {
    let expressions = [
        "0 2 * * *",
        "30 1 * * *",
        "*/30 * * * *",
        "0 * * * *",
        "15 2,3 * * *",
    ];
    let transitions = [
        (NEW_YORK, "2026-03-07T12:00:00Z"),
        (PARIS, "2026-03-28T12:00:00Z"),
        (PARIS, "2026-10-24T12:00:00Z"),
        (NEW_YORK, "2026-10-31T12:00:00Z"),
    ];
    for (zone, from) in transitions {
        for expression in expressions {
            assert_consistent(&schedule(expression, zone), from, 36);
        }
    }
    assert_consistent(
        &schedule("0 30 2 * * *", NEW_YORK),
        "2026-03-07T12:00:00Z",
        36,
    );
}

#[test]
fn due_slot_after_a_long_downtime_is_only_the_latest_missed_slot() {
    let hourly = schedule("0 * * * *", "UTC");
    let now = utc("2026-01-03T05:20:00Z");
    let last_fired = Some(utc("2026-01-01T00:00:00Z"));
    assert_eq!(
        hourly.due_slot(last_fired, now),
        Some(utc("2026-01-03T05:00:00Z"))
    );
    // Once fired, nothing else is due until the next slot.
    let fired = Some(utc("2026-01-03T05:00:00Z"));
    assert_eq!(hourly.due_slot(fired, now), None);
    assert_eq!(hourly.due_slot(fired, utc("2026-01-03T05:59:59Z")), None);
    assert_eq!(hourly.next_after(now), Some(utc("2026-01-03T06:00:00Z")));
    assert_eq!(
        hourly.due_slot(fired, utc("2026-01-03T06:00:00Z")),
        Some(utc("2026-01-03T06:00:00Z"))
    );
}

#[test]
fn due_slot_across_a_dst_change_returns_the_latest_wall_clock_slot() {
    let daily = schedule("30 2 * * *", PARIS);
    let last_fired = Some(utc("2026-03-27T01:30:00Z"));
    assert_eq!(
        daily.due_slot(last_fired, utc("2026-03-31T12:00:00Z")),
        Some(utc("2026-03-31T00:30:00Z"))
    );
}

#[test]
fn due_slot_without_a_last_fired_slot_returns_the_latest_past_slot() {
    let daily = schedule("0 12 * * *", "UTC");
    assert_eq!(
        daily.due_slot(None, utc("2026-01-05T11:00:00Z")),
        Some(utc("2026-01-04T12:00:00Z"))
    );
}

#[test]
fn searches_at_the_ends_of_time_return_none_instead_of_panicking() {
    let daily = schedule("0 12 * * *", PARIS);
    assert_eq!(daily.next_after(DateTime::<Utc>::MAX_UTC), None);
    assert_eq!(daily.latest_at_or_before(DateTime::<Utc>::MIN_UTC), None);
}

#[test]
fn a_leap_day_on_a_given_weekday_is_found_decades_away_in_both_directions() {
    // `*/7` starts with a star, so both day fields must match: a Sunday 29 February.
    let rare = schedule("0 0 29 2 */7", "UTC");
    assert_eq!(
        rare.next_after(utc("2033-01-01T00:00:00Z")),
        Some(utc("2060-02-29T00:00:00Z"))
    );
    assert_eq!(
        rare.latest_at_or_before(utc("2059-12-31T00:00:00Z")),
        Some(utc("2032-02-29T00:00:00Z"))
    );
}
