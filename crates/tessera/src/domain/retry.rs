//! The webhook retry schedule and the table of which outcomes are retried.
//! Pure: the dispatcher asks [`RetryPolicy::decide`] what to do after each
//! attempt and stores the answer as a due time on the delivery row, so no
//! worker ever sleeps waiting for a retry.
//!
//! | outcome of an attempt                         | what happens next                      |
//! |-----------------------------------------------|----------------------------------------|
//! | any 2xx                                       | delivered                              |
//! | 410 Gone                                      | failed, no more attempts               |
//! | 429 / 503 with `Retry-After`                  | retried after max(backoff, Retry-After capped) |
//! | other 3xx, 4xx, 5xx                           | retried with backoff                   |
//! | timeout, connect, dns, tls, reset, body error | retried with backoff                   |
//! | address refused by policy at send time        | retried with backoff (DNS may change)  |
//! | attempts exhausted (1 + max_retries)          | failed                                 |

use std::time::Duration;

/// Timing of retries; every value comes from configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the seed says 3).
    pub max_retries: u32,
    /// Delay before the first retry.
    pub base: Duration,
    /// Each further delay is this many times the previous one.
    pub factor: f64,
    /// Relative jitter: a delay d becomes uniform in d·(1 ± jitter).
    pub jitter: f64,
    /// Longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
}

/// What one attempt produced, as far as the schedule cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this status code.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No usable answer (timeout, connect, DNS, TLS, reset, body, refused address).
    TransportError,
}

/// The dispatcher's next step for a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    RetryAfter(Duration),
    /// No more attempts: `gone` is true when the receiver said 410.
    GiveUp {
        gone: bool,
    },
}

impl RetryPolicy {
    /// Decide after attempt number `attempts_made` (1 for the first attempt),
    /// when `attempts_allowed` attempts are allowed in all. `unit` is a
    /// uniform random number in [0, 1) for the jitter, passed in so the
    /// function stays pure and testable.
    pub fn decide(
        &self,
        outcome: AttemptOutcome,
        attempts_made: u32,
        attempts_allowed: u32,
        unit: f64,
    ) -> Decision {
        let retry_after = match outcome {
            AttemptOutcome::Status {
                code: 200..=299, ..
            } => return Decision::Delivered,
            AttemptOutcome::Status { code: 410, .. } => return Decision::GiveUp { gone: true },
            AttemptOutcome::Status {
                code: 429 | 503,
                retry_after,
            } => retry_after,
            _ => None,
        };
        if attempts_made >= attempts_allowed {
            return Decision::GiveUp { gone: false };
        }
        let backoff = self.backoff(attempts_made, unit);
        let delay = match retry_after {
            Some(wait) => backoff.max(wait.min(self.retry_after_cap)),
            None => backoff,
        };
        Decision::RetryAfter(delay)
    }

    /// Delay before retry number `retry` (1-based), with jitter applied.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30) as i32;
        let nominal = self.base.as_secs_f64() * self.factor.powi(exponent);
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        // Cap at a day so absurd settings cannot overflow.
        Duration::from_secs_f64((nominal * spread).clamp(0.0, 86_400.0))
    }

    /// Attempts in all for a new delivery.
    pub fn attempts_allowed(&self) -> u32 {
        self.max_retries + 1
    }
}

/// Parse a `Retry-After` header: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_secs(30),
            factor: 4.0,
            jitter: 0.2,
            retry_after_cap: Duration::from_secs(3600),
        }
    }

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn the_default_schedule_is_30s_2min_8min_without_jitter() {
        let p = seed_policy();
        let mid = 0.5;
        assert_eq!(p.backoff(1, mid), Duration::from_secs(30));
        assert_eq!(p.backoff(2, mid), Duration::from_secs(120));
        assert_eq!(p.backoff(3, mid), Duration::from_secs(480));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = seed_policy();
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(24));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(36));
    }

    #[test]
    fn any_2xx_is_delivered() {
        for code in [200, 201, 204, 299] {
            assert_eq!(
                seed_policy().decide(status(code), 1, 4, 0.5),
                Decision::Delivered
            );
        }
    }

    #[test]
    fn redirects_client_errors_and_server_errors_are_retried() {
        for code in [301, 302, 307, 400, 404, 429, 500, 503] {
            assert!(matches!(
                seed_policy().decide(status(code), 1, 4, 0.5),
                Decision::RetryAfter(_)
            ));
        }
    }

    #[test]
    fn gone_stops_at_once() {
        assert_eq!(
            seed_policy().decide(status(410), 1, 4, 0.5),
            Decision::GiveUp { gone: true }
        );
    }

    #[test]
    fn the_fourth_failed_attempt_gives_up() {
        let p = seed_policy();
        assert!(matches!(
            p.decide(AttemptOutcome::TransportError, 3, 4, 0.5),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            p.decide(AttemptOutcome::TransportError, 4, 4, 0.5),
            Decision::GiveUp { gone: false }
        );
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let p = seed_policy();
        let ask = |secs| AttemptOutcome::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            p.decide(ask(600), 1, 4, 0.5),
            Decision::RetryAfter(Duration::from_secs(600))
        );
        assert_eq!(
            p.decide(ask(1), 1, 4, 0.5),
            Decision::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            p.decide(ask(99_999), 1, 4, 0.5),
            Decision::RetryAfter(Duration::from_secs(3600))
        );
    }

    #[test]
    fn retry_after_is_ignored_on_other_statuses() {
        let outcome = AttemptOutcome::Status {
            code: 500,
            retry_after: Some(Duration::from_secs(600)),
        };
        assert_eq!(
            seed_policy().decide(outcome, 1, 4, 0.5),
            Decision::RetryAfter(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 03 Dec 2026 10:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
