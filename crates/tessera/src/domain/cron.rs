//! Cron schedules in an IANA time zone, for schedule triggers. Pure: the
//! scheduler asks for the slot that is due now and the next one, and claims
//! slots in the database itself.
//!
//! # Syntax
//!
//! Five fields `minute hour day-of-month month day-of-week`, or six with a
//! leading `second` field. Each field is a comma list of `*`, `v`, `a-b`, each
//! optionally with a step (`*/15`, `1-10/2`, `5/15` = `5-59/15`). Months and
//! weekdays accept English three-letter names (`JAN`, `mon`), day-of-week 0 and
//! 7 are both Sunday, and `?` is a synonym for `*` in the two day fields. The
//! macros `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`
//! and `@hourly` are accepted.
//!
//! Day-of-month and day-of-week combine as in Vixie cron: when both are
//! restricted a day matches if *either* does; when either is written starting
//! with `*` (including `*/2`) both must match.
//!
//! # Slots and daylight saving time
//!
//! A slot is a wall-clock time in the schedule's zone, turned into an instant:
//! - a wall-clock time that does not exist (spring-forward gap) fires at the
//!   first instant after the gap, so a daily 02:30 job still runs on that day;
//!   several such times collapse into that one instant;
//! - a wall-clock time that occurs twice (fall-back overlap) fires once, at
//!   its first occurrence. Consequently `0 * * * *` does not fire during the
//!   repeated hour.
//!
//! Searches are bounded to [`SEARCH_YEARS`] years, which covers every date
//! that can occur at all (the Gregorian calendar repeats every 400 years), so
//! an expression that parses always has a next slot, and nothing loops forever.

mod field;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

use self::field::{Field, ValueSet, parse_field};
pub use self::field::{FieldError, FieldKind};

/// Zone used when a schedule names none.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// How far [`Schedule::next_after`] and [`Schedule::latest_at_or_before`] look.
pub const SEARCH_YEARS: u32 = 400;

/// Offsets from UTC stay within ±15 h, so a wall-clock time is always reached
/// within this many seconds of the same digits read as UTC.
const OFFSET_WINDOW_SECS: i64 = 15 * 3600;

/// Why an expression or time zone was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading \
         second field, found {0}"
    )]
    FieldCount(usize),
    #[error("{field}: {error}")]
    Field { field: FieldKind, error: FieldError },
    #[error(
        "unknown macro `{0}` (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight \
         or @hourly)"
    )]
    UnknownMacro(String),
    #[error("schedule never fires: none of its months has any of its days of the month")]
    NeverFires,
    #[error("unknown time zone `{0}` (expected an IANA name such as Europe/Paris or UTC)")]
    UnknownTimeZone(String),
}

/// A parsed cron expression bound to a time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    expression: String,
    time_zone: Tz,
    seconds: ValueSet,
    minutes: ValueSet,
    hours: ValueSet,
    days_of_month: ValueSet,
    months: ValueSet,
    days_of_week: ValueSet,
    /// Both day fields restricted: a day matches if either matches.
    either_day: bool,
}

impl Schedule {
    /// Parses `expression` in the IANA zone `time_zone` (e.g. `Europe/Paris`;
    /// [`DEFAULT_TIME_ZONE`] when the user named none).
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, CronError> {
        let time_zone = time_zone
            .parse::<Tz>()
            .map_err(|_| CronError::UnknownTimeZone(time_zone.to_owned()))?;
        let expression = expression.trim();
        let fields: Vec<&str> = expand_macro(expression)?.split_ascii_whitespace().collect();
        let [second, minute, hour, day, month, weekday] = match fields[..] {
            [minute, hour, day, month, weekday] => ["0", minute, hour, day, month, weekday],
            [second, minute, hour, day, month, weekday] => {
                [second, minute, hour, day, month, weekday]
            }
            _ => return Err(CronError::FieldCount(fields.len())),
        };
        // In written order, so the first bad field is the one reported.
        let seconds = field(FieldKind::Second, second)?;
        let minutes = field(FieldKind::Minute, minute)?;
        let hours = field(FieldKind::Hour, hour)?;
        let days = field(FieldKind::DayOfMonth, day)?;
        let months = field(FieldKind::Month, month)?;
        let weekdays = field(FieldKind::DayOfWeek, weekday)?;
        let schedule = Self {
            expression: expression.to_owned(),
            time_zone,
            seconds: seconds.values,
            minutes: minutes.values,
            hours: hours.values,
            days_of_month: days.values,
            months: months.values,
            days_of_week: weekdays.values,
            either_day: !days.star && !weekdays.star,
        };
        if !schedule.fires_on_some_date() {
            return Err(CronError::NeverFires);
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed), e.g. for `triggered_by.cron_expression`.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the schedule's zone.
    pub fn time_zone(&self) -> &'static str {
        self.time_zone.name()
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = self.wall_clock(after)?;
        let limit = from
            .date()
            .checked_add_months(Months::new(12 * SEARCH_YEARS))?;
        loop {
            let local = self.next_match(from, limit)?;
            let instant = self.resolve(local)?;
            if instant > after {
                return Some(instant);
            }
            // Only after a fall-back: this wall-clock time already fired at its
            // first occurrence, before `after`.
            from = local.checked_add_signed(TimeDelta::seconds(1))?;
        }
    }

    /// The last slot at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = self.latest_wall_clock(at)?;
        let limit = from
            .date()
            .checked_sub_months(Months::new(12 * SEARCH_YEARS))?;
        loop {
            let local = self.prev_match(from, limit)?;
            let instant = self.resolve(local)?;
            if instant <= at {
                return Some(instant);
            }
            from = local.checked_sub_signed(TimeDelta::seconds(1))?;
        }
    }

    /// The slot the scheduler should fire now, if any: the latest slot in
    /// `(last_fired, now]`. However long the scheduler was down, at most one
    /// slot is returned, so missed slots fire once rather than as a burst; the
    /// one after it is [`Self::next_after`]`(now)`.
    ///
    /// `last_fired` is the last slot fired. For a schedule that never fired,
    /// pass the moment it was created: `None` means "no lower bound", so the
    /// latest past slot, however old, would be returned.
    pub fn due_slot(
        &self,
        last_fired: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let latest = self.latest_at_or_before(now)?;
        match last_fired {
            Some(last) if latest <= last => None,
            _ => Some(latest),
        }
    }

    /// `instant` on the schedule's wall clock, to the whole second.
    fn wall_clock(&self, instant: DateTime<Utc>) -> Option<NaiveDateTime> {
        read_clock(instant, self.offset_secs(instant))
    }

    /// The latest wall-clock time whose slot could be at or before `at`.
    /// After a fall-back the clock shows times again whose first occurrence
    /// is already past, so read `at` with the larger offset of the last day.
    fn latest_wall_clock(&self, at: DateTime<Utc>) -> Option<NaiveDateTime> {
        let day_before = at.checked_sub_signed(TimeDelta::days(1))?;
        read_clock(at, self.offset_secs(at).max(self.offset_secs(day_before)))
    }

    fn offset_secs(&self, instant: DateTime<Utc>) -> i64 {
        let offset = self
            .time_zone
            .offset_from_utc_datetime(&instant.naive_utc());
        i64::from(offset.fix().local_minus_utc())
    }

    /// The instant a matching wall-clock time fires at (see the module docs).
    fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.time_zone.from_local_datetime(&local).earliest() {
            Some(instant) => Some(instant.with_timezone(&Utc)),
            None => self.end_of_gap(local),
        }
    }

    /// The first instant whose wall-clock time is later than `local`, a time
    /// skipped by a spring-forward: the moment the clocks jump.
    fn end_of_gap(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let target = local.and_utc().timestamp();
        let wall = |secs: i64| {
            DateTime::from_timestamp(secs, 0).map(|instant| secs + self.offset_secs(instant))
        };
        // Invariant: wall(before) < target < wall(after).
        let (mut before, mut after) = (target - OFFSET_WINDOW_SECS, target + OFFSET_WINDOW_SECS);
        while after - before > 1 {
            let middle = before + (after - before) / 2;
            if wall(middle)? > target {
                after = middle;
            } else {
                before = middle;
            }
        }
        DateTime::from_timestamp(after, 0)
    }

    /// The first matching wall-clock time at or after `from`, up to `limit`.
    fn next_match(&self, from: NaiveDateTime, limit: NaiveDate) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut earliest = (from.hour(), from.minute(), from.second());
        while date <= limit {
            if !self.months.contains(date.month()) {
                date = first_of_month(date).checked_add_months(Months::new(1))?;
            } else if self.day_matches(date)
                && let Some(time) = self.next_time(earliest)
            {
                return Some(date.and_time(time));
            } else {
                date = date.succ_opt()?;
            }
            earliest = (0, 0, 0);
        }
        None
    }

    /// The last matching wall-clock time at or before `from`, down to `limit`.
    fn prev_match(&self, from: NaiveDateTime, limit: NaiveDate) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut latest = (from.hour(), from.minute(), from.second());
        while date >= limit {
            if !self.months.contains(date.month()) {
                date = first_of_month(date).pred_opt()?;
            } else if self.day_matches(date)
                && let Some(time) = self.prev_time(latest)
            {
                return Some(date.and_time(time));
            } else {
                date = date.pred_opt()?;
            }
            latest = (23, 59, 59);
        }
        None
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_day = self.days_of_month.contains(date.day());
        let by_weekday = self
            .days_of_week
            .contains(date.weekday().num_days_from_sunday());
        if self.either_day {
            by_day || by_weekday
        } else {
            by_day && by_weekday
        }
    }

    /// The first matching time of day at or after `(hour, minute, second)`.
    fn next_time(&self, (h, m, s): (u32, u32, u32)) -> Option<NaiveTime> {
        let mut hour = self.hours.next_from(h)?;
        loop {
            let from = if hour == h { (m, s) } else { (0, 0) };
            if let Some((minute, second)) = self.next_minute(from) {
                return NaiveTime::from_hms_opt(hour, minute, second);
            }
            hour = self.hours.next_from(hour + 1)?;
        }
    }

    fn next_minute(&self, (m, s): (u32, u32)) -> Option<(u32, u32)> {
        let mut minute = self.minutes.next_from(m)?;
        loop {
            let from = if minute == m { s } else { 0 };
            if let Some(second) = self.seconds.next_from(from) {
                return Some((minute, second));
            }
            minute = self.minutes.next_from(minute + 1)?;
        }
    }

    /// The last matching time of day at or before `(hour, minute, second)`.
    fn prev_time(&self, (h, m, s): (u32, u32, u32)) -> Option<NaiveTime> {
        let mut hour = self.hours.prev_from(h)?;
        loop {
            let from = if hour == h { (m, s) } else { (59, 59) };
            if let Some((minute, second)) = self.prev_minute(from) {
                return NaiveTime::from_hms_opt(hour, minute, second);
            }
            hour = self.hours.prev_from(hour.checked_sub(1)?)?;
        }
    }

    fn prev_minute(&self, (m, s): (u32, u32)) -> Option<(u32, u32)> {
        let mut minute = self.minutes.prev_from(m)?;
        loop {
            let from = if minute == m { s } else { 59 };
            if let Some(second) = self.seconds.prev_from(from) {
                return Some((minute, second));
            }
            minute = self.minutes.prev_from(minute.checked_sub(1)?)?;
        }
    }

    /// Whether some date matches at all. Weekdays alone always do (every month
    /// has each weekday); otherwise a day of the month must exist in one of
    /// the months, and then, over 400 years, it falls on every weekday.
    fn fires_on_some_date(&self) -> bool {
        self.either_day
            || (1..=12u32).filter(|&m| self.months.contains(m)).any(|m| {
                self.days_of_month
                    .next_from(1)
                    .is_some_and(|first| first <= longest_month(m))
            })
    }
}

impl FromStr for Schedule {
    type Err = CronError;

    /// Parses an expression in [`DEFAULT_TIME_ZONE`].
    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        Self::parse(expression, DEFAULT_TIME_ZONE)
    }
}

fn field(kind: FieldKind, text: &str) -> Result<Field, CronError> {
    parse_field(kind, text).map_err(|error| CronError::Field { field: kind, error })
}

fn expand_macro(expression: &str) -> Result<&str, CronError> {
    let Some(name) = expression.strip_prefix('@') else {
        return Ok(expression);
    };
    match name.to_ascii_lowercase().as_str() {
        "yearly" | "annually" => Ok("0 0 1 1 *"),
        "monthly" => Ok("0 0 1 * *"),
        "weekly" => Ok("0 0 * * 0"),
        "daily" | "midnight" => Ok("0 0 * * *"),
        "hourly" => Ok("0 * * * *"),
        _ => Err(CronError::UnknownMacro(expression.to_owned())),
    }
}

/// `instant` read on a clock `offset_secs` ahead of UTC, to the whole second;
/// `None` beyond the calendar's range (chrono's own conversion would panic).
fn read_clock(instant: DateTime<Utc>, offset_secs: i64) -> Option<NaiveDateTime> {
    let local = instant
        .naive_utc()
        .checked_add_signed(TimeDelta::seconds(offset_secs))?;
    Some(local.with_nanosecond(0).unwrap_or(local))
}

fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// Days in `month` in a leap year.
fn longest_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
