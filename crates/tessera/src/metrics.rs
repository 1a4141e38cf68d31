//! Prometheus metrics: counters and histograms updated in process, plus
//! gauges read from the store at scrape time (queue depth, oldest pending
//! delivery, runs by status), so every node reports the shared truth.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{DynStore, RunStatus, StoreResult};

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the ffmpeg job buckets, in seconds.
const JOB_BUCKETS: [f64; 9] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// Attempt outcomes counted by `tessera_webhook_attempts_total`.
pub const OUTCOMES: [&str; 9] = [
    "success",
    "status",
    "timeout",
    "connect",
    "dns",
    "tls",
    "reset",
    "refused_address",
    "body",
];

#[derive(Default)]
pub struct Metrics {
    attempts: [AtomicU64; OUTCOMES.len()],
    delivered: AtomicU64,
    failed: AtomicU64,
    attempt_latency: Histogram<{ LATENCY_BUCKETS.len() }>,
    ffmpeg_jobs: Histogram<{ JOB_BUCKETS.len() }>,
}

struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in microseconds, to stay an integer.
    sum_us: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[f64; N], seconds: f64) {
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, bounds: &[f64; N]) {
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

impl Metrics {
    /// One attempt finished with this outcome (`success` or an error class).
    pub fn attempt(&self, outcome: &str, seconds: f64) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.attempts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.attempt_latency.observe(&LATENCY_BUCKETS, seconds);
    }

    /// A delivery reached a final state.
    pub fn delivery_final(&self, delivered: bool) {
        let counter = if delivered {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One ffmpeg job ran for this long.
    pub fn ffmpeg_job(&self, seconds: f64) {
        self.ffmpeg_jobs.observe(&JOB_BUCKETS, seconds);
    }

    /// The Prometheus text exposition.
    pub async fn render(&self, store: &DynStore) -> StoreResult<String> {
        let stats = store.outbox_stats().await?;
        let runs = store.run_counts().await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = String::new();
        out.push_str("# HELP tessera_webhook_attempts_total Webhook attempts by outcome.\n");
        out.push_str("# TYPE tessera_webhook_attempts_total counter\n");
        for (outcome, n) in OUTCOMES.iter().zip(&self.attempts) {
            let _ = writeln!(
                out,
                "tessera_webhook_attempts_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP tessera_webhook_deliveries_total Deliveries that reached a final state.\n",
        );
        out.push_str("# TYPE tessera_webhook_deliveries_total counter\n");
        let _ = writeln!(
            out,
            "tessera_webhook_deliveries_total{{outcome=\"succeeded\"}} {}",
            self.delivered.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "tessera_webhook_deliveries_total{{outcome=\"failed\"}} {}",
            self.failed.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP tessera_webhook_attempt_duration_seconds Duration of webhook attempts.\n",
        );
        out.push_str("# TYPE tessera_webhook_attempt_duration_seconds histogram\n");
        self.attempt_latency.render(
            &mut out,
            "tessera_webhook_attempt_duration_seconds",
            &LATENCY_BUCKETS,
        );
        out.push_str("# HELP tessera_webhook_queue_depth Deliveries still owed (pending).\n");
        out.push_str("# TYPE tessera_webhook_queue_depth gauge\n");
        let _ = writeln!(out, "tessera_webhook_queue_depth {}", stats.pending);
        out.push_str("# HELP tessera_webhook_oldest_pending_age_seconds Age of the oldest pending delivery.\n");
        out.push_str("# TYPE tessera_webhook_oldest_pending_age_seconds gauge\n");
        let age = stats
            .oldest_pending_created_at
            .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "tessera_webhook_oldest_pending_age_seconds {age}");
        out.push_str("# HELP tessera_runs Runs by status.\n");
        out.push_str("# TYPE tessera_runs gauge\n");
        for status in [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::PartialComplete,
            RunStatus::Failed,
        ] {
            let n = runs
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "tessera_runs{{status=\"{}\"}} {n}", status.as_str());
        }
        out.push_str(
            "# HELP tessera_ffmpeg_job_duration_seconds Duration of ffmpeg render jobs.\n",
        );
        out.push_str("# TYPE tessera_ffmpeg_job_duration_seconds histogram\n");
        self.ffmpeg_jobs.render(
            &mut out,
            "tessera_ffmpeg_job_duration_seconds",
            &JOB_BUCKETS,
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::<3>::default();
        let bounds = [0.1, 1.0, 10.0];
        h.observe(&bounds, 0.5);
        h.observe(&bounds, 5.0);
        let mut out = String::new();
        h.render(&mut out, "x", &bounds);
        assert!(out.contains("x_bucket{le=\"0.1\"} 0\n"));
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"));
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"));
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("x_count 2\n"));
    }
}
