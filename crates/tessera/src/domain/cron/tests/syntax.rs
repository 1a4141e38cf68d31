//! Every syntax form, and the errors for what is refused.

use super::*;

const MONDAY_NOON: &str = "2026-01-05T12:00:00Z";

#[test]
fn a_star_step_fires_every_quarter_hour_at_second_zero() {
    let slots = next_slots(&schedule("*/15 * * * *", "UTC"), "2026-01-05T10:07:30Z", 4);
    assert_eq!(
        slots,
        [
            "2026-01-05 10:15:00 +00:00",
            "2026-01-05 10:30:00 +00:00",
            "2026-01-05 10:45:00 +00:00",
            "2026-01-05 11:00:00 +00:00",
        ]
    );
}

#[test]
fn lists_ranges_and_stepped_ranges_combine_in_one_field() {
    let slots = next_slots(&schedule("1-10/4,30,50-51 9 * * *", "UTC"), MONDAY_NOON, 7);
    assert_eq!(
        slots,
        [
            "2026-01-06 09:01:00 +00:00",
            "2026-01-06 09:05:00 +00:00",
            "2026-01-06 09:09:00 +00:00",
            "2026-01-06 09:30:00 +00:00",
            "2026-01-06 09:50:00 +00:00",
            "2026-01-06 09:51:00 +00:00",
            "2026-01-07 09:01:00 +00:00",
        ]
    );
}

#[test]
fn a_value_with_a_step_runs_to_the_end_of_the_range() {
    let slots = next_slots(&schedule("5/20 0 * * *", "UTC"), MONDAY_NOON, 3);
    assert_eq!(
        slots,
        [
            "2026-01-06 00:05:00 +00:00",
            "2026-01-06 00:25:00 +00:00",
            "2026-01-06 00:45:00 +00:00",
        ]
    );
}

#[test]
fn month_and_weekday_names_are_case_insensitive() {
    let by_name = schedule("0 9 * jan,JUL Mon-fri", "UTC");
    let by_number = schedule("0 9 * 1,7 1-5", "UTC");
    assert_eq!(
        next_slots(&by_name, MONDAY_NOON, 20),
        next_slots(&by_number, MONDAY_NOON, 20)
    );
    let slots = next_slots(&by_name, "2026-01-30T12:00:00Z", 2);
    assert_eq!(
        slots,
        ["2026-07-01 09:00:00 +00:00", "2026-07-02 09:00:00 +00:00"]
    );
}

#[test]
fn day_of_week_zero_seven_and_sun_all_mean_sunday() {
    let zero = next_slots(&schedule("0 0 * * 0", "UTC"), MONDAY_NOON, 3);
    assert_eq!(
        zero,
        next_slots(&schedule("0 0 * * 7", "UTC"), MONDAY_NOON, 3)
    );
    assert_eq!(
        zero,
        next_slots(&schedule("0 0 * * SUN", "UTC"), MONDAY_NOON, 3)
    );
    assert_eq!(zero[0], "2026-01-11 00:00:00 +00:00");
}

#[test]
fn a_weekday_range_ending_in_seven_includes_sunday() {
    let slots = next_slots(&schedule("0 0 * * 5-7", "UTC"), MONDAY_NOON, 4);
    assert_eq!(
        slots,
        [
            "2026-01-09 00:00:00 +00:00",
            "2026-01-10 00:00:00 +00:00",
            "2026-01-11 00:00:00 +00:00",
            "2026-01-16 00:00:00 +00:00",
        ]
    );
}

#[test]
fn when_both_day_fields_are_restricted_either_may_match() {
    // The 13th of each month, and every Friday.
    let slots = next_slots(&schedule("0 0 13 * FRI", "UTC"), MONDAY_NOON, 4);
    assert_eq!(
        slots,
        [
            "2026-01-09 00:00:00 +00:00",
            "2026-01-13 00:00:00 +00:00",
            "2026-01-16 00:00:00 +00:00",
            "2026-01-23 00:00:00 +00:00",
        ]
    );
}

#[test]
fn a_day_field_written_with_a_star_makes_both_day_fields_required() {
    // Vixie cron: `*/2` starts with `*`, so odd days that are also Mondays.
    let slots = next_slots(&schedule("0 0 */2 * MON", "UTC"), MONDAY_NOON, 3);
    assert_eq!(
        slots,
        [
            "2026-01-19 00:00:00 +00:00",
            "2026-02-09 00:00:00 +00:00",
            "2026-02-23 00:00:00 +00:00",
        ]
    );
}

#[test]
fn a_question_mark_is_a_star_in_the_day_fields() {
    assert_eq!(
        next_slots(&schedule("0 0 ? * MON", "UTC"), MONDAY_NOON, 3),
        next_slots(&schedule("0 0 * * MON", "UTC"), MONDAY_NOON, 3)
    );
}

#[test]
fn a_sixth_field_in_front_is_the_second() {
    let every_20s = schedule("*/20 * * * * *", "UTC");
    assert_eq!(
        next_slots(&every_20s, "2026-01-05T12:00:05Z", 3),
        [
            "2026-01-05 12:00:20 +00:00",
            "2026-01-05 12:00:40 +00:00",
            "2026-01-05 12:01:00 +00:00",
        ]
    );
    let half_past_noon = schedule("30 0 12 * * *", "UTC");
    assert_eq!(
        next_slots(&half_past_noon, MONDAY_NOON, 1),
        ["2026-01-05 12:00:30 +00:00"]
    );
}

#[test]
fn macros_expand_to_their_five_field_equivalents() {
    for (name, expansion) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
    ] {
        assert_eq!(
            next_slots(&schedule(name, "UTC"), MONDAY_NOON, 3),
            next_slots(&schedule(expansion, "UTC"), MONDAY_NOON, 3),
            "{name}"
        );
    }
}

#[test]
fn surrounding_and_repeated_whitespace_is_ignored_and_the_expression_is_kept_trimmed() {
    let spaced = schedule("  0\t12  * *   * ", "UTC");
    assert_eq!(spaced.expression(), "0\t12  * *   *");
    assert_eq!(
        next_slots(&spaced, MONDAY_NOON, 2),
        next_slots(&schedule("0 12 * * *", "UTC"), MONDAY_NOON, 2)
    );
}

#[test]
fn from_str_parses_in_utc_and_the_zone_name_is_reported() {
    let parsed: Schedule = "0 12 * * *".parse().expect("parses");
    assert_eq!(parsed.time_zone(), "UTC");
    assert_eq!(
        schedule("0 12 * * *", "Europe/Paris").time_zone(),
        "Europe/Paris"
    );
}

#[test]
fn the_thirty_first_skips_shorter_months() {
    let slots = next_slots(&schedule("0 0 31 * *", "UTC"), MONDAY_NOON, 3);
    assert_eq!(
        slots,
        [
            "2026-01-31 00:00:00 +00:00",
            "2026-03-31 00:00:00 +00:00",
            "2026-05-31 00:00:00 +00:00",
        ]
    );
}

#[test]
fn february_29th_waits_for_a_leap_year_even_across_2100() {
    let leap_day = schedule("0 0 29 FEB *", "UTC");
    assert_eq!(
        next_slots(&leap_day, MONDAY_NOON, 1),
        ["2028-02-29 00:00:00 +00:00"]
    );
    // 2100 is not a leap year: eight years between leap days.
    assert_eq!(
        next_slots(&leap_day, "2096-03-01T00:00:00Z", 1),
        ["2104-02-29 00:00:00 +00:00"]
    );
}

#[test]
fn out_of_range_values_name_the_field_and_its_range() {
    assert_eq!(error("61 * * * *"), "minute: 61 is out of range 0–59");
    assert_eq!(error("60 0 * * * *"), "second: 60 is out of range 0–59");
    assert_eq!(error("0 24 * * *"), "hour: 24 is out of range 0–23");
    assert_eq!(error("0 0 0 * *"), "day-of-month: 0 is out of range 1–31");
    assert_eq!(error("0 0 * 13 *"), "month: 13 is out of range 1–12");
    assert_eq!(error("0 0 * * 8"), "day-of-week: 8 is out of range 0–7");
    assert_eq!(
        error("99999999999 * * * *"),
        "minute: 99999999999 is out of range 0–59"
    );
}

#[test]
fn the_first_bad_field_in_written_order_is_reported() {
    assert_eq!(error("61 * 0 * *"), "minute: 61 is out of range 0–59");
    assert_eq!(error("60 61 * * * *"), "second: 60 is out of range 0–59");
}

#[test]
fn malformed_items_are_refused_with_the_item_quoted() {
    assert_eq!(error("1,,2 * * * *"), "minute: empty list item in `1,,2`");
    assert_eq!(
        error("*/0 * * * *"),
        "minute: step in `*/0` must be a number of at least 1"
    );
    assert_eq!(
        error("*/x * * * *"),
        "minute: step in `*/x` must be a number of at least 1"
    );
    assert_eq!(
        error("*/ * * * *"),
        "minute: step in `*/` must be a number of at least 1"
    );
    assert_eq!(
        error("*/+5 * * * *"),
        "minute: step in `*/+5` must be a number of at least 1"
    );
    assert_eq!(error("0 10-5 * * *"), "hour: range `10-5` runs backwards");
    assert_eq!(
        error("0 0 * * FRI-MON"),
        "day-of-week: range `FRI-MON` runs backwards"
    );
    assert_eq!(error("-5 * * * *"), "minute: missing value in `-5`");
    assert_eq!(error("5- * * * *"), "minute: missing value in `5-`");
    assert_eq!(error("/5 * * * *"), "minute: missing value in `/5`");
    assert_eq!(error("? * * * *"), "minute: `?` is not a number");
    assert_eq!(error("MON * * * *"), "minute: `MON` is not a number");
    assert_eq!(
        error("0 0 * MON *"),
        "month: `MON` is neither a number nor a name"
    );
    assert_eq!(
        error("0 0 * * MONDAY"),
        "day-of-week: `MONDAY` is neither a number nor a name"
    );
}

#[test]
fn the_wrong_number_of_fields_is_refused() {
    for expression in ["", "* * * *", "* * * * * * *"] {
        let message = error(expression);
        assert!(
            message.starts_with("expected 5 fields (minute hour day-of-month month day-of-week)"),
            "{expression:?}: {message}"
        );
    }
    assert!(error("* * * *").ends_with("found 4"));
}

#[test]
fn dates_that_never_exist_are_refused_as_never_firing() {
    let never = "schedule never fires: none of its months has any of its days of the month";
    assert_eq!(error("0 0 30 2 *"), never);
    assert_eq!(error("0 0 30,31 FEB *"), never);
    assert_eq!(error("0 0 31 APR,JUN,SEP,NOV *"), never);
    // With a restricted weekday too, either may match, so this one fires.
    assert!(Schedule::parse("0 0 30 2 MON", "UTC").is_ok());
}

#[test]
fn unknown_macros_and_time_zones_are_refused() {
    assert!(error("@reboot").starts_with("unknown macro `@reboot`"));
    for zone in ["Mars/Olympus", "", "Europe/Pariss"] {
        assert_eq!(
            Schedule::parse("0 0 * * *", zone),
            Err(CronError::UnknownTimeZone(zone.to_owned())),
        );
    }
    let message = CronError::UnknownTimeZone("Mars/Olympus".into()).to_string();
    assert_eq!(
        message,
        "unknown time zone `Mars/Olympus` (expected an IANA name such as Europe/Paris or UTC)"
    );
}
