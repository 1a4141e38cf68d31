//! One field of a cron expression: its grammar (`*`, lists, ranges, steps,
//! names) and the set of values it allows.

use std::fmt;

/// Which of the six positions a field occupies; used for ranges, names and
/// error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl FieldKind {
    /// Smallest and largest value accepted in the expression. Day-of-week
    /// accepts 7 as a second spelling of Sunday.
    fn bounds(self) -> (u32, u32) {
        match self {
            Self::Second | Self::Minute => (0, 59),
            Self::Hour => (0, 23),
            Self::DayOfMonth => (1, 31),
            Self::Month => (1, 12),
            Self::DayOfWeek => (0, 7),
        }
    }

    /// Three-letter names and the value of the first one.
    fn names(self) -> (&'static [&'static str], u32) {
        match self {
            Self::Month => (&MONTH_NAMES, 1),
            Self::DayOfWeek => (&WEEKDAY_NAMES, 0),
            _ => (&[], 0),
        }
    }

    /// `?` ("no specific value", from Quartz) only makes sense for days.
    fn allows_question_mark(self) -> bool {
        matches!(self, Self::DayOfMonth | Self::DayOfWeek)
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::DayOfMonth => "day-of-month",
            Self::Month => "month",
            Self::DayOfWeek => "day-of-week",
        })
    }
}

/// Why one field was refused; shown after the field's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("empty list item in `{0}`")]
    EmptyItem(String),
    #[error("{value} is out of range {min}–{max}")]
    OutOfRange { value: String, min: u32, max: u32 },
    #[error("missing value in `{0}`")]
    MissingValue(String),
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("`{0}` is neither a number nor a name")]
    NotANumberOrName(String),
    #[error("step in `{0}` must be a number of at least 1")]
    BadStep(String),
    #[error("range `{0}` runs backwards")]
    Backwards(String),
}

/// The values a field allows, as a bit set (bit n = value n). 64 bits fit
/// every field, including second 0–59.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueSet(u64);

impl ValueSet {
    pub fn contains(self, value: u32) -> bool {
        value < 64 && self.0 & (1 << value) != 0
    }

    /// Smallest member ≥ `value`.
    pub fn next_from(self, value: u32) -> Option<u32> {
        if value >= 64 {
            return None;
        }
        let rest = self.0 & (u64::MAX << value);
        (rest != 0).then(|| rest.trailing_zeros())
    }

    /// Largest member ≤ `value`.
    pub fn prev_from(self, value: u32) -> Option<u32> {
        let mask = if value >= 63 {
            u64::MAX
        } else {
            (1 << (value + 1)) - 1
        };
        let rest = self.0 & mask;
        (rest != 0).then(|| 63 - rest.leading_zeros())
    }

    fn insert(&mut self, value: u32) {
        self.0 |= 1 << value;
    }
}

/// A parsed field: its values and whether it was written starting with `*`
/// or `?`, which decides how day-of-month and day-of-week combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub values: ValueSet,
    pub star: bool,
}

/// Parses one whitespace-free field such as `1-10/2,30,MON-FRI`.
pub fn parse_field(kind: FieldKind, text: &str) -> Result<Field, FieldError> {
    let mut values = ValueSet(0);
    for item in text.split(',') {
        if item.is_empty() {
            return Err(FieldError::EmptyItem(text.to_owned()));
        }
        for value in parse_item(kind, item)? {
            // Day-of-week 7 is Sunday again; store it once, as 0.
            let value = if kind == FieldKind::DayOfWeek && value == 7 {
                0
            } else {
                value
            };
            values.insert(value);
        }
    }
    let star = text.starts_with('*') || text.starts_with('?');
    Ok(Field { values, star })
}

/// One list item: `*`, `?`, `v`, `a-b`, each optionally followed by `/step`
/// (`v/step` means `v-max/step`, as in most cron implementations).
fn parse_item(kind: FieldKind, item: &str) -> Result<impl Iterator<Item = u32>, FieldError> {
    let (min, max) = kind.bounds();
    let (base, step) = match item.split_once('/') {
        Some(("", _)) => return Err(FieldError::MissingValue(item.to_owned())),
        Some((base, step)) => (base, Some(parse_step(item, step)?)),
        None => (item, None),
    };
    let (start, end) = match base {
        "*" => (min, max_for_star(kind)),
        "?" if kind.allows_question_mark() => (min, max_for_star(kind)),
        _ => match base.split_once('-') {
            Some((a, b)) if a.is_empty() || b.is_empty() => {
                return Err(FieldError::MissingValue(item.to_owned()));
            }
            Some((a, b)) => {
                let (a, b) = (parse_value(kind, a)?, parse_value(kind, b)?);
                if a > b {
                    return Err(FieldError::Backwards(item.to_owned()));
                }
                (a, b)
            }
            None => {
                let value = parse_value(kind, base)?;
                // A bare value with a step runs to the end of the range.
                (value, if step.is_some() { max } else { value })
            }
        },
    };
    Ok((start..=end).step_by(step.unwrap_or(1)))
}

/// `*` in day-of-week means 0–6; 7 would only repeat Sunday.
fn max_for_star(kind: FieldKind) -> u32 {
    match kind {
        FieldKind::DayOfWeek => 6,
        _ => kind.bounds().1,
    }
}

fn parse_step(item: &str, step: &str) -> Result<usize, FieldError> {
    // `usize::from_str` would also accept `+5`; cron steps are plain digits.
    let digits = !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit());
    match step.parse::<usize>() {
        Ok(step) if digits && step >= 1 => Ok(step),
        _ => Err(FieldError::BadStep(item.to_owned())),
    }
}

/// A number or (for months and weekdays) a three-letter English name.
fn parse_value(kind: FieldKind, token: &str) -> Result<u32, FieldError> {
    let (min, max) = kind.bounds();
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(FieldError::OutOfRange {
                value: token.to_owned(),
                min,
                max,
            }),
        };
    }
    let (names, first) = kind.names();
    if names.is_empty() {
        return Err(FieldError::NotANumber(token.to_owned()));
    }
    names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(token))
        .and_then(|index| u32::try_from(index).ok())
        .map(|index| first + index)
        .ok_or_else(|| FieldError::NotANumberOrName(token.to_owned()))
}
