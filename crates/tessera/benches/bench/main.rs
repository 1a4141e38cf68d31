//! `make bench`: Tessera measured against baselines on the same machine in the
//! same session. Every figure is a ratio to its baseline; absolute times on a
//! shared 2-core machine are noise. Loopback only, bounded in time.
//!
//! `--smoke` runs each figure once on tiny inputs (part of `make test`, so the
//! code cannot rot) and writes nothing.

mod api;
mod backlog;
mod delivery;
mod latency;
mod nodes;
mod receiver;
mod report;
mod video;

use std::path::PathBuf;

use report::Figure;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let smoke = std::env::args().any(|a| a == "--smoke");
    let load_at_start = report::load_average();
    let out = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md"));
    let mut figures: Vec<Figure> = Vec::new();
    // `--only NAME` (delivery, latency, api, video, nodes, backlog) measures one group and writes
    // nothing, for working on one figure.
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("delivery") {
        figures.extend(delivery::run(smoke).await?);
    }
    if wanted("latency") {
        figures.extend(latency::run(smoke).await?);
    }
    if wanted("api") {
        figures.extend(api::run(smoke).await?);
    }
    if wanted("video") {
        figures.extend(video::run(smoke).await?);
    }
    if wanted("nodes") {
        figures.extend(nodes::run(smoke).await?);
    }
    if wanted("backlog") {
        figures.extend(backlog::run(smoke).await?);
    }
    for f in &figures {
        eprintln!("{}", f.line());
    }
    if smoke || only.is_some() {
        eprintln!(
            "{} figures measured; nothing written (--smoke or --only)",
            figures.len()
        );
    } else {
        std::fs::write(&out, report::markdown(&figures, &load_at_start))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
