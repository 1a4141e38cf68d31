//! Video figures: a trim → reframe 9:16 → render run against the equivalent
//! hand-written single ffmpeg command on the same file, and thumbnail
//! extraction against a direct ffmpeg call.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::config::{Config, Layer};

use crate::report::{Figure, median, ms};

const KEY: &str = "mk_benchbenchbenchbenchbenchbench";

struct Sizes {
    input_seconds: u32,
    trim_ms: u64,
    rounds: usize,
}

pub async fn run(smoke: bool) -> anyhow::Result<Vec<Figure>> {
    let sizes = if smoke {
        Sizes {
            input_seconds: 3,
            trim_ms: 1000,
            rounds: 1,
        }
    } else {
        Sizes {
            input_seconds: 45,
            trim_ms: 30_000,
            rounds: 5,
        }
    };
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input.mp4");
    make_input(&input, sizes.input_seconds)?;
    let mut figures = run_vs_command(dir.path(), &input, &sizes).await?;
    figures.push(thumbnail_vs_command(dir.path(), &input, &sizes).await?);
    Ok(figures)
}

/// A 720p H.264 + stereo AAC test video (stereo like most real videos),
/// generated so the bench needs no fixtures.
fn make_input(path: &Path, seconds: u32) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &seconds.to_string(),
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        ])
        .arg(path)
        .status()?;
    anyhow::ensure!(status.success(), "could not generate the bench input");
    Ok(())
}

/// What a person would type for trim + 9:16 centre crop + H.264/AAC MP4, with
/// the same encoder settings Tessera's render defaults use.
fn hand_written(input: &Path, out: &Path, trim_ms: u64) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-nostdin",
        "-y",
        "-v",
        "error",
        "-ss",
        "0",
        "-t",
        &format!("{:.3}", trim_ms as f64 / 1000.0),
        "-i",
    ])
    .arg(input)
    .args(["-vf", "crop=trunc(ih*9/16/2)*2:ih,format=yuv420p"])
    .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"])
    .args(["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"])
    .arg(out);
    cmd
}

async fn run_vs_command(dir: &Path, input: &Path, sizes: &Sizes) -> anyhow::Result<Vec<Figure>> {
    let files = serve_file(input.to_path_buf()).await?;
    let mut layer = Layer {
        listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(dir.join("data")),
        bootstrap_api_key: Some(KEY.into()),
        allow_private_targets: Some("127.0.0.0/8".into()),
        poll_interval_ms: Some(200),
        ..Layer::default()
    };
    layer.ffmpeg_jobs = Some(1);
    let app = tessera::app::start(Config::resolve(layer, None)?).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let base = format!("http://{}", app.addr);
    let agent: Value = http
        .post(format!("{base}/agent/create"))
        .bearer_auth(KEY)
        .json(&json!({
            "name": "bench",
            "nodes": [
                {"id": "in", "type": "video_input"},
                {"id": "cut", "type": "trim", "params": {"start_ms": 0, "end_ms": sizes.trim_ms}},
                {"id": "tall", "type": "reframe", "params": {"aspect_ratio": "9:16", "mode": "crop"}},
                {"id": "out", "type": "render"}
            ],
            "connections": [{"source": "in", "target": "cut"}, {"source": "cut", "target": "tall"}, {"source": "tall", "target": "out"}]
        }))
        .send()
        .await?
        .json()
        .await?;
    let agent = agent["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("agent not created: {agent}"))?
        .to_owned();
    let (mut runs, mut commands, mut encodes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        let out = dir.join(format!("hand-{round}.mp4"));
        let started = Instant::now();
        anyhow::ensure!(
            hand_written(input, &out, sizes.trim_ms).status()?.success(),
            "hand-written ffmpeg failed"
        );
        commands.push(started.elapsed());

        let encode_before = ffmpeg_job_seconds(&http, &base).await?;
        let started = Instant::now();
        let run: Value = http
            .post(format!("{base}/agent/{agent}/run"))
            .bearer_auth(KEY)
            .json(&json!({"video_urls": [format!("{files}/input.mp4")]}))
            .send()
            .await?
            .json()
            .await?;
        let id = run["run_id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("run not started: {run}"))?;
        loop {
            let state: Value = http
                .get(format!("{base}/agent_run/{id}"))
                .bearer_auth(KEY)
                .send()
                .await?
                .json()
                .await?;
            match state["status"].as_str() {
                Some("completed") => break,
                Some("queued" | "running") => tokio::time::sleep(Duration::from_millis(100)).await,
                _ => anyhow::bail!("bench run did not complete: {state}"),
            }
        }
        runs.push(started.elapsed());
        encodes.push(Duration::from_secs_f64(
            ffmpeg_job_seconds(&http, &base).await? - encode_before,
        ));
    }
    app.shutdown().await;
    let (run, command, encode) = (
        median(&mut runs),
        median(&mut commands),
        median(&mut encodes),
    );
    let ratio = run.as_secs_f64() / command.as_secs_f64();
    let encode_ratio = encode.as_secs_f64() / command.as_secs_f64();
    let seconds = sizes.trim_ms / 1000;
    Ok(vec![
        Figure {
            name: format!("Video: trim {seconds} s → reframe 9:16 → render, the encode inside the run"),
            tessera: ms(encode),
            baseline: format!("{} (one hand-written ffmpeg command)", ms(command)),
            ratio: encode_ratio,
            target: "≤ 1.15×".into(),
            met: encode_ratio <= 1.15,
            note: format!(
                "Tessera's single ffmpeg process for the chain (one decode, one filter graph, one encode) \
                 against the command a person would type with the same encoder settings.{}",
                if encode_ratio <= 1.15 {
                    ""
                } else {
                    " Not met in this run. Earlier finding (2026-12-03, not re-measured by this run): the \
                     exact command line Tessera generates (from the debug log), run from a shell on the same \
                     file, took the same time as the baseline (3.91 s vs 3.95 s and 4.07 s vs 4.13 s by hand), \
                     so the gap is in how the process runs under the server (and in this machine's load), not \
                     in the filter graph; next step: perf stat on both and compare scheduling and I/O."
                }
            ),
        },
        Figure {
            name: format!("Video: trim {seconds} s → reframe 9:16 → render, whole run"),
            tessera: ms(run),
            baseline: format!("{} (one hand-written ffmpeg command)", ms(command)),
            ratio,
            target: "≤ 1.15×".into(),
            met: ratio <= 1.15,
            note: "The whole run: download over loopback, two ffprobe passes per file (metadata and a \
                   truncation check), input and output thumbnails, storing files, database writes and webhook \
                   events, against the bare encode. The fixed part is about half a second of extra ffmpeg/ffprobe \
                   processes; next step: produce the output thumbnail from the encode itself and skip re-probing \
                   our own output."
                .into(),
        },
    ])
}

/// Seconds of ffmpeg render jobs so far, from `/metrics`.
async fn ffmpeg_job_seconds(http: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_ffmpeg_job_duration_seconds_sum "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no ffmpeg job time in /metrics"))
}

async fn thumbnail_vs_command(dir: &Path, input: &Path, sizes: &Sizes) -> anyhow::Result<Figure> {
    let media = tessera::media::Media::new(tessera::media::MediaConfig {
        ffmpeg: "ffmpeg".into(),
        ffprobe: "ffprobe".into(),
        jobs: 1,
        max_media_seconds: 10_800,
        job_timeout: None,
    });
    let probe = media.probe(input).await?;
    let (mut ours, mut direct) = (Vec::new(), Vec::new());
    for round in 0..(sizes.rounds * 3).max(3) {
        let out = dir.join(format!("thumb-{round}.jpg"));
        let started = Instant::now();
        media.thumbnail(input, &probe, &out).await?;
        ours.push(started.elapsed());
        let out = dir.join(format!("direct-{round}.jpg"));
        let started = Instant::now();
        let ok = Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-v", "error", "-ss", "1", "-i"])
            .arg(input)
            .args(["-frames:v", "1", "-vf", "scale=640:-2", "-q:v", "3"])
            .arg(&out)
            .status()?
            .success();
        anyhow::ensure!(ok, "direct thumbnail failed");
        direct.push(started.elapsed());
    }
    let (ours, direct) = (median(&mut ours), median(&mut direct));
    let ratio = ours.as_secs_f64() / direct.as_secs_f64();
    Ok(Figure {
        name: "Video: thumbnail extraction".into(),
        tessera: ms(ours),
        baseline: format!("{} (direct ffmpeg call)", ms(direct)),
        ratio,
        target: "≤ 1.15×".into(),
        met: ratio <= 1.15,
        note: String::new(),
    })
}

/// Serve one file over loopback HTTP; returns the base URL.
async fn serve_file(path: PathBuf) -> anyhow::Result<String> {
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/input.mp4",
        get(move || {
            let path = path.clone();
            async move {
                tokio::fs::read(path)
                    .await
                    .map_err(|_| axum::http::StatusCode::NOT_FOUND)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}"))
}
