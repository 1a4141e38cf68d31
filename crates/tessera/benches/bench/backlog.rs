//! Figure 3: a backlog of deliveries piled up while the receiver was down —
//! the server's memory and the database's size while it waits, how fast it
//! drains once the receiver is back, and how long fresh events wait
//! meanwhile. Figure 6: the same at several sizes, so the slope shows.
//!
//! "The receiver is down" is modelled as deliveries waiting in backoff: the
//! events are queued through the crate's own store code (`enqueue_events`,
//! 2,000 events a transaction) while the server runs, due an hour later;
//! "it comes back" is one `UPDATE` making all of them due. Fresh events
//! then arrive through `POST /webhooks/test` at figure 2's rate, to the same
//! receiver, until the backlog has drained. The baseline for the drain rate
//! is a figure-1 run (one node, events queued beforehand, no fresh events)
//! in the same group.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::latency::{API_KEY, drive, test_event};
use crate::nodes::{self, Node};
use crate::receiver::{Counter, LatencyReceiver};
use crate::report::{Figure, percentile};

/// Peak resident memory the server may use with the backlog queued.
const RSS_TARGET: u64 = 150 << 20;
/// Fresh events are timed for this long before the backlog becomes due,
/// as the unloaded reference.
const IDLE_PROBE: Duration = Duration::from_secs(2);

pub async fn run(smoke: bool) -> anyhow::Result<Vec<Figure>> {
    let (mut sizes, rate, figure1_events) = if smoke {
        (vec![300], 50, 40)
    } else {
        (vec![10_000, 100_000, 1_000_000], 500, 5000)
    };
    // `TESSERA_BENCH_BACKLOG_SIZES=10000,100000` measures other sizes (to
    // work on the figure without the million).
    if let Ok(list) = std::env::var("TESSERA_BENCH_BACKLOG_SIZES") {
        sizes = list
            .split(',')
            .map(|n| n.trim().parse())
            .collect::<Result<_, _>>()?;
    }
    let figure1 = nodes::measure(&Counter::start().await?, None, 1, figure1_events)
        .await?
        .per_second;
    let receiver = LatencyReceiver::start().await?;
    let mut measured = Vec::new();
    for &n in &sizes {
        let b = measure(&receiver, n, rate).await?;
        eprintln!("backlog {n}: {}", b.summary(figure1));
        measured.push(b);
    }
    Ok(figures(&measured, figure1, figure1_events, rate))
}

/// One backlog, queued and drained.
struct Backlog {
    deliveries: usize,
    /// Queueing through the store, while the server ran.
    queue_time: Duration,
    /// The server's resident memory before anything was queued.
    rss_idle: u64,
    /// Its peak (VmHWM) once the backlog was queued, and after it drained.
    rss_queued: u64,
    rss_peak: u64,
    /// Database file and WAL once the backlog was queued, and after it
    /// drained (with every attempt recorded).
    db_queued: u64,
    db_drained: u64,
    /// Queued deliveries the receiver got, and how long that took from
    /// making them due.
    drained: usize,
    drain_time: Duration,
    /// CPU time of the server per delivery while it drained.
    cpu_per_delivery: Duration,
    /// Fresh events' latencies (ms) before the backlog was due, and while
    /// it drained.
    idle: Vec<f64>,
    fresh: Vec<f64>,
}

impl Backlog {
    fn drain_rate(&self) -> f64 {
        self.drained as f64 / self.drain_time.as_secs_f64()
    }

    fn complete(&self) -> bool {
        self.drained >= self.deliveries
    }

    fn bytes_per_delivery(&self) -> f64 {
        self.db_queued as f64 / self.deliveries as f64
    }

    fn fresh_p(&self, p: f64) -> f64 {
        percentile(&mut self.fresh.clone(), p)
    }

    fn summary(&self, figure1: f64) -> String {
        format!(
            "queued in {:.1} s ({:.0} µs each), RSS {} idle / {} queued / {} peak, DB {:.0} B/delivery \
             queued ({} after draining), drained {} of {} at {:.0}/s ({:.2}× figure 1, {:.0} µs CPU each), \
             fresh p50 {:.1} ms p99 {:.1} ms ({} samples; before the drain p99 {:.1} ms)",
            self.queue_time.as_secs_f64(),
            self.queue_time.as_secs_f64() * 1e6 / self.deliveries as f64,
            mb(self.rss_idle),
            mb(self.rss_queued),
            mb(self.rss_peak),
            self.bytes_per_delivery(),
            mb(self.db_drained),
            self.drained,
            self.deliveries,
            self.drain_rate(),
            self.drain_rate() / figure1,
            self.cpu_per_delivery.as_secs_f64() * 1e6,
            self.fresh_p(0.5),
            self.fresh_p(0.99),
            self.fresh.len(),
            percentile(&mut self.idle.clone(), 0.99),
        )
    }
}

/// Queue `n` deliveries for `receiver` behind a running server, then make
/// them due and drain them while fresh events arrive at `rate`.
async fn measure(receiver: &LatencyReceiver, n: usize, rate: u64) -> anyhow::Result<Backlog> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("tessera.db");
    let url = format!("sqlite://{}", db.display());
    let node = Node::start_with(
        dir.path(),
        &[
            ("TESSERA_BOOTSTRAP_API_KEY", API_KEY),
            ("TESSERA_DATABASE_URL", &url),
        ],
    )?;
    let rss_idle = node.memory("VmRSS");
    let queue_time = nodes::queue(&url, dir.path(), &receiver.url, n).await?;
    let db_queued = database_bytes(&db);
    // `POST /webhooks/test` answers after the first attempt; behind a
    // backlog that can take long, and an open loop would pile up thousands
    // of waiting connections. The event exists once the call is accepted.
    let fresh = |c: &reqwest::Client, _: &str| {
        test_event(c, &node, &receiver.url).timeout(Duration::from_secs(2))
    };
    let idle_until = Instant::now() + IDLE_PROBE;
    let idle = drive(receiver, rate, |_| Instant::now() < idle_until, Duration::ZERO, fresh).await?;
    let rss_queued = node.memory("VmHWM");

    receiver.reset();
    let cpu_before = node.cpu_time();
    let started = Instant::now();
    // A backlog that drains slower than a tenth of figure 1's pace is cut
    // short here and reported as such, so the suite stays bounded.
    let deadline = started + Duration::from_secs(30) + Duration::from_millis(n as u64 / 2);
    let mut finished = None;
    nodes::make_due(&url).await?;
    let fresh = drive(
        receiver,
        rate,
        |_| {
            if receiver.queued() < n && Instant::now() < deadline {
                return true;
            }
            finished.get_or_insert_with(Instant::now);
            false
        },
        Duration::ZERO,
        fresh,
    )
    .await?;
    let drain_time = finished.unwrap_or_else(Instant::now) - started;
    let drained = receiver.queued().min(n);
    let cpu = node.cpu_time().saturating_sub(cpu_before);
    let rss_peak = node.memory("VmHWM");
    drop(node);
    Ok(Backlog {
        deliveries: n,
        queue_time,
        rss_idle,
        rss_queued,
        rss_peak,
        db_queued,
        db_drained: database_bytes(&db),
        drained,
        drain_time,
        cpu_per_delivery: cpu / (drained + fresh.len()).max(1) as u32,
        idle,
        fresh,
    })
}

/// The SQLite database with its WAL, in bytes.
fn database_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / f64::from(1 << 20))
}

fn figures(measured: &[Backlog], figure1: f64, figure1_events: usize, rate: u64) -> Vec<Figure> {
    let (smallest, largest) = (&measured[0], &measured[measured.len() - 1]);
    let n = largest.deliveries;
    let drain_ratio = largest.drain_rate() / figure1;
    let (p50, p99) = (largest.fresh_p(0.5), largest.fresh_p(0.99));
    let idle_p99 = percentile(&mut largest.idle.clone(), 0.99);
    let growth = largest.bytes_per_delivery() / smallest.bytes_per_delivery();
    let mut figures = vec![
        Figure {
            name: format!("Backlog: server memory with {n} deliveries queued and draining"),
            tessera: format!(
                "{} peak ({} once queued)",
                mb(largest.rss_peak),
                mb(largest.rss_queued)
            ),
            baseline: format!("{} (the same server idle)", mb(largest.rss_idle)),
            ratio: largest.rss_peak as f64 / largest.rss_idle.max(1) as f64,
            target: format!("< {}", mb(RSS_TARGET)),
            met: largest.rss_peak < RSS_TARGET,
            note: format!(
                "{n} `TEST` deliveries to one receiver, queued through the crate's store code \
                 (`Store::enqueue_events`, 2,000 events a transaction, the same rows `POST /webhooks/test` \
                 writes) while one SQLite node with every role ran; they were due an hour later, which is \
                 how a backlog waits while its receiver is down (deliveries in backoff). Queueing took \
                 {:.0} s. Peak RSS is the server process's VmHWM from /proc, read once the backlog was \
                 queued and again after it drained.",
                largest.queue_time.as_secs_f64()
            ),
        },
        Figure {
            name: format!("Backlog: database size with {n} deliveries queued"),
            tessera: format!(
                "{:.0} B per delivery ({})",
                largest.bytes_per_delivery(),
                mb(largest.db_queued)
            ),
            baseline: format!(
                "{:.0} B per delivery with {} queued",
                smallest.bytes_per_delivery(),
                smallest.deliveries
            ),
            ratio: growth,
            target: "linear (0.8–1.25×)".into(),
            met: (0.8..=1.25).contains(&growth),
            note: format!(
                "The database file and its WAL once the backlog was queued (event and delivery rows and \
                 their indexes); after draining, with an attempt recorded for each, it was {}.",
                mb(largest.db_drained)
            ),
        },
        Figure {
            name: format!("Backlog: drain rate of {n} deliveries"),
            tessera: if largest.complete() {
                format!("{:.0}/s", largest.drain_rate())
            } else {
                format!(
                    "{:.0}/s ({} of {n} drained before the deadline)",
                    largest.drain_rate(),
                    largest.drained
                )
            },
            baseline: format!("{figure1:.0}/s (figure 1: {figure1_events} queued, no fresh events)"),
            ratio: drain_ratio,
            target: "≥ 0.8×".into(),
            met: drain_ratio >= 0.8 && largest.complete(),
            note: format!(
                "Timed from the one `UPDATE` that makes the whole backlog due (the receiver is back) to \
                 the receiver holding every queued delivery, while fresh events arrived at {rate}/s to the \
                 same receiver; each attempt recorded in SQLite. The server used {:.0} µs of CPU per \
                 delivery (backlog and fresh) while it drained. The baseline is a figure-1 run in the same \
                 group.",
                largest.cpu_per_delivery.as_secs_f64() * 1e6
            ),
        },
        Figure {
            name: format!("Backlog: fresh events while {n} drain, {rate}/s"),
            tessera: format!("p50 {p50:.1} ms, p99 {p99:.1} ms"),
            baseline: format!("p99 {idle_p99:.1} ms (the same server before the backlog was due)"),
            ratio: p99 / idle_p99.max(0.1),
            target: "p99 ≤ 20 ms".into(),
            met: p99 <= 20.0,
            note: format!(
                "Figure 2's measurement (`POST /webhooks/test`, open loop, event creation → receiver) \
                 during the whole drain, to the receiver the backlog goes to; {} samples. Baseline: the \
                 same for {} s with the backlog queued but not yet due.",
                largest.fresh.len(),
                IDLE_PROBE.as_secs()
            ),
        },
    ];
    figures.extend(measured.iter().map(|b| Figure {
        name: format!("Cost growth: {} deliveries", b.deliveries),
        tessera: format!(
            "queued {:.1} µs each; RSS {}; {:.0} B each; drain {:.0}/s; fresh p99 {:.1} ms",
            b.queue_time.as_secs_f64() * 1e6 / b.deliveries as f64,
            mb(b.rss_peak),
            b.bytes_per_delivery(),
            b.drain_rate(),
            b.fresh_p(0.99)
        ),
        baseline: format!("{figure1:.0}/s (figure 1)"),
        ratio: b.drain_rate() / figure1,
        target: "reported (slope)".into(),
        met: true,
        note: String::new(),
    }));
    figures
}
