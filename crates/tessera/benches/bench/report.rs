//! Figures and the BENCHMARKS.md table.

use std::time::Duration;

/// One measured figure: Tessera against its baseline.
pub struct Figure {
    pub name: String,
    pub tessera: String,
    pub baseline: String,
    /// Tessera ÷ baseline (lower is better for times).
    pub ratio: f64,
    pub target: String,
    pub met: bool,
    pub note: String,
}

impl Figure {
    pub fn line(&self) -> String {
        format!(
            "{}: tessera {} vs baseline {} → {:.3}× (target {}: {})",
            self.name,
            self.tessera,
            self.baseline,
            self.ratio,
            self.target,
            if self.met { "met" } else { "NOT met" }
        )
    }
}

pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The `p` quantile (0..=1) of `samples` (sorted in place).
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        return f64::NAN;
    }
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map_or("?".into(), |kb| {
            format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let ffmpeg = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM; {ffmpeg}")
}

/// The 1-, 5- and 15-minute load averages, from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// `load_at_start`: [`load_average`] when the suite began.
pub fn markdown(figures: &[Figure], load_at_start: &str) -> String {
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str("Measured by `make bench` (reproduce with that command). Each figure is Tessera against a baseline\n");
    out.push_str("measured in the same session on the same machine, interleaved; medians of the samples.\n\n");
    out.push_str(&format!(
        "Machine: {}\n\nDate: {}\n\n",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    out.push_str(&format!(
        "Load average (1, 5, 15 min) when the suite started: {load_at_start}; when it ended: {}. \
         The machine may be shared: a load above what the suite itself causes (about 1–2 on these \
         cores) means other work (builds) ran beside it, which lowers throughput and raises tail \
         latencies.\n\n",
        load_average()
    ));
    out.push_str(
        "| Figure | Tessera | Baseline | Ratio | Target | Met |\n|---|---|---|---|---|---|\n",
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {:.3}× | {} | {} |\n",
            f.name,
            f.tessera,
            f.baseline,
            f.ratio,
            f.target,
            if f.met { "yes" } else { "**no**" }
        ));
    }
    out.push_str("\n## Notes\n\n");
    for f in figures.iter().filter(|f| !f.note.is_empty()) {
        out.push_str(&format!("- **{}**: {}\n", f.name, f.note));
    }
    out
}
