//! YouTube channel triggers against a stand-in YouTube on loopback: feeds
//! (Atom shaped like YouTube's, `media:group` included) whose entries the
//! tests change, channel pages for handle resolution, and a yt-dlp stand-in
//! answering `--dump-json` with per-video durations. Nothing waits with a
//! bare sleep: "nothing happened" is checked after later polls completed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode as AxumStatus;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, TestApp, trim_agent};

pub const CH_A: &str = "UCaaaaaaaaaaaaaaaaaaaaaa";
const CH_B: &str = "UCbbbbbbbbbbbbbbbbbbbbbb";
const CH_C: &str = "UCcccccccccccccccccccccc";
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Clone)]
enum Mode {
    Ok,
    Status(u16),
    Garbage,
}

#[derive(Default)]
struct Stand {
    /// Entries per channel, newest first: (video id, title, updated).
    entries: HashMap<String, Vec<(String, String, String)>>,
    modes: HashMap<String, Mode>,
    hits: HashMap<String, usize>,
    handles: HashMap<String, String>,
}

/// The stand-in YouTube: feeds and channel pages.
pub struct FakeYoutube {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<Stand>>,
}

impl FakeYoutube {
    pub async fn start() -> FakeYoutube {
        let state = Arc::new(Mutex::new(Stand::default()));
        let router = Router::new()
            .route("/feeds/videos.xml", get(feed))
            .route("/{page}", get(channel_page))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeYoutube { addr, state }
    }

    pub fn publish(&self, channel: &str, video: &str, title: &str) {
        let mut s = self.state.lock().unwrap();
        let list = s.entries.entry(channel.into()).or_default();
        list.insert(
            0,
            (
                video.into(),
                title.into(),
                "2026-03-01T17:00:06+00:00".into(),
            ),
        );
    }

    /// Publish with an explicit publication time (RFC 3339).
    fn publish_at(&self, channel: &str, video: &str, title: &str, at: &str) {
        let mut s = self.state.lock().unwrap();
        let list = s.entries.entry(channel.into()).or_default();
        list.insert(0, (video.into(), title.into(), at.into()));
    }

    fn edit(&self, channel: &str, video: &str, title: &str) {
        let mut s = self.state.lock().unwrap();
        for e in s.entries.entry(channel.into()).or_default() {
            if e.0 == video {
                e.1 = title.into();
                e.2 = "2026-03-02T09:30:00+00:00".into();
            }
        }
    }

    fn mode(&self, channel: &str, mode: Mode) {
        self.state
            .lock()
            .unwrap()
            .modes
            .insert(channel.into(), mode);
    }

    fn hits(&self, channel: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(channel)
            .copied()
            .unwrap_or(0)
    }

    fn handle(&self, handle: &str, channel: &str) {
        let mut s = self.state.lock().unwrap();
        s.handles.insert(handle.into(), channel.into());
    }
}

async fn feed(
    State(state): State<Arc<Mutex<Stand>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let channel = q.get("channel_id").cloned().unwrap_or_default();
    let mut s = state.lock().unwrap();
    *s.hits.entry(channel.clone()).or_default() += 1;
    match s.modes.get(&channel).cloned().unwrap_or(Mode::Ok) {
        Mode::Status(code) => AxumStatus::from_u16(code).unwrap().into_response(),
        Mode::Garbage => "<html><body>this is not a feed".into_response(),
        Mode::Ok => {
            let entries = s.entries.get(&channel).cloned().unwrap_or_default();
            let body: String = entries
                .iter()
                .map(|(id, title, updated)| entry_xml(&channel, id, title, updated))
                .collect();
            (
                [("content-type", "application/atom+xml; charset=UTF-8")],
                feed_xml(&channel, &body),
            )
                .into_response()
        }
    }
}

async fn channel_page(
    State(state): State<Arc<Mutex<Stand>>>,
    Path(page): Path<String>,
) -> Response {
    let found = state.lock().unwrap().handles.get(&page).cloned();
    match found {
        Some(id) => Html(format!(
            r#"<html><head><link rel="canonical" href="https://www.youtube.com/channel/{id}"></head><body></body></html>"#
        ))
        .into_response(),
        None => AxumStatus::NOT_FOUND.into_response(),
    }
}

fn feed_xml(channel: &str, entries: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">
 <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id={channel}"/>
 <id>yt:channel:{channel}</id>
 <yt:channelId>{channel}</yt:channelId>
 <title>Test &amp; Channel</title>
 <published>2015-03-10T18:00:04+00:00</published>
{entries}
</feed>
"#
    )
}

fn entry_xml(channel: &str, video: &str, title: &str, updated: &str) -> String {
    format!(
        r#" <entry>
  <id>yt:video:{video}</id>
  <yt:videoId>{video}</yt:videoId>
  <yt:channelId>{channel}</yt:channelId>
  <title>{title}</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v={video}"/>
  <published>{updated}</published>
  <updated>{updated}</updated>
  <media:group>
   <media:title>{title}</media:title>
   <media:thumbnail url="https://i2.ytimg.com/vi/{video}/hqdefault.jpg" width="480" height="360"/>
   <media:description>About {title}</media:description>
  </media:group>
 </entry>
"#
    )
}

/// A yt-dlp stand-in: `--dump-json` prints `<dir>/<video id>.json` (or
/// fails when there is none); a download copies a fixture to `--output`.
pub struct FakeYtDlp {
    dir: tempfile::TempDir,
}

impl FakeYtDlp {
    pub fn new() -> FakeYtDlp {
        let dir = tempfile::tempdir().unwrap();
        let fixture = crate::support::fixtures_dir().join("bikes.mp4");
        let script = format!(
            "#!/bin/sh\nout=''; dump=''; url=''\nwhile [ $# -gt 0 ]; do case \"$1\" in --output) out=\"$2\"; shift;; --dump-json) dump=1;; --) url=\"$2\"; shift;; esac; shift; done\nid=\"${{url##*v=}}\"\nif [ -n \"$dump\" ]; then\n  if [ -f '{dir}/'\"$id\".json ]; then cat '{dir}/'\"$id\".json; exit 0; fi\n  echo \"ERROR: [youtube] $id: Video unavailable\" >&2; exit 1\nfi\ncp '{fixture}' \"$out\"\n",
            dir = dir.path().display(),
            fixture = fixture.display()
        );
        let path = dir.path().join("yt-dlp");
        std::fs::write(&path, script).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
        FakeYtDlp { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("yt-dlp")
    }

    fn duration(&self, video: &str, seconds: u64) {
        std::fs::write(
            self.dir.path().join(format!("{video}.json")),
            json!({"id": video, "duration": seconds}).to_string(),
        )
        .unwrap();
    }
}

pub async fn spawn(yt: &FakeYoutube, ytdlp: &FakeYtDlp) -> TestApp {
    let base = format!("http://{}", yt.addr);
    let ytdlp = ytdlp.path();
    TestApp::spawn_with(move |l| {
        l.youtube_poll_seconds = Some(1);
        l.youtube_feed_url = Some(format!("{base}/feeds/videos.xml?channel_id={{channel_id}}"));
        l.youtube_channel_url = Some(format!("{base}/{{handle_or_path}}"));
        l.ytdlp_path = Some(ytdlp);
        // Never look up the real name: watch URLs answer with loopback.
        l.dns_overrides = Some("www.youtube.com=127.0.0.1".into());
    })
    .await
}

pub async fn add(app: &TestApp, agent: &str, body: Value) -> Value {
    let (status, answer) = app
        .post(
            &format!("/agent/{agent}/triggers/add_youtube_channels"),
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body} → {answer}");
    answer
}

async fn youtube_triggers(app: &TestApp, agent: &str) -> Vec<Value> {
    let (status, list) = app.get(&format!("/agent/{agent}/triggers")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "youtube")
        .cloned()
        .collect()
}

/// The channel as `GET /agent/{id}/triggers` shows it.
async fn channel(app: &TestApp, agent: &str, id: &str) -> Value {
    for t in youtube_triggers(app, agent).await {
        for c in t["channels"].as_array().unwrap() {
            if c["channel_id"] == id {
                return c.clone();
            }
        }
    }
    panic!("channel {id} is not watched");
}

/// Wait until the channel finished `n` more polls than it had at the call.
pub async fn wait_polls(app: &TestApp, agent: &str, id: &str, n: usize) -> Value {
    let until = tokio::time::Instant::now() + DEADLINE;
    let mut last = channel(app, agent, id).await["last_poll_at"].clone();
    let mut seen = 0;
    loop {
        let now = channel(app, agent, id).await;
        if now["last_poll_at"] != last {
            seen += 1;
            last = now["last_poll_at"].clone();
            if seen >= n {
                return now;
            }
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no poll of {id}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn runs_of(app: &TestApp, trigger: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/trigger/{trigger}/runs?limit=100")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["runs"].as_array().unwrap().clone()
}

pub async fn wait_runs(app: &TestApp, trigger: &str, n: usize) -> Vec<Value> {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let runs = runs_of(app, trigger).await;
        if runs.len() >= n {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "only {} runs",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn video_ids(runs: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = runs
        .iter()
        .map(|r| r["triggered_by"]["video_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn new_videos_fire_once_and_the_back_catalogue_and_edits_never() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    let hook = Receiver::start().await;
    yt.publish(CH_A, "old0000000A", "Old one");
    yt.publish(CH_A, "old0000000B", "Old two");
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let trigger = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_A], "trigger_callback_url": hook.url("/yt")}),
    )
    .await;
    let tid = trigger["id"].as_str().unwrap().to_owned();
    assert_eq!(trigger["type"], "youtube");
    assert_eq!(trigger["trigger_callback_url"], hook.url("/yt"));
    // The first poll records the back-catalogue; a later one still fires nothing.
    wait_polls(&app, &agent, CH_A, 2).await;
    assert!(runs_of(&app, &tid).await.is_empty());

    yt.publish(CH_A, "new0000000C", "Fresh &amp; new");
    let runs = wait_runs(&app, &tid, 1).await;
    let by = &runs[0]["triggered_by"];
    assert_eq!(by["type"], "youtube");
    assert_eq!(by["channel_id"], CH_A);
    assert_eq!(by["video_id"], "new0000000C");
    assert_eq!(by["video_title"], "Fresh & new");
    assert_eq!(
        by["video_url"],
        "https://www.youtube.com/watch?v=new0000000C"
    );
    assert_eq!(by["trigger_id"], tid.as_str());
    assert!(by["triggered_at"].as_str().unwrap().ends_with('Z'), "{by}");

    // Edits change `updated` and the title, never the id: nothing fires.
    yt.edit(CH_A, "new0000000C", "Renamed");
    yt.edit(CH_A, "old0000000A", "Renamed too");
    wait_polls(&app, &agent, CH_A, 2).await;
    assert_eq!(runs_of(&app, &tid).await.len(), 1);

    let hooks = hook.wait_for(1, DEADLINE).await;
    let started = hooks[0].json();
    assert_eq!(started["flag"], "RUN_STARTED");
    assert_eq!(started["triggered_by"]["video_id"], "new0000000C");
    let listed = youtube_triggers(&app, &agent).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["next_poll_at"].is_string(), "{}", listed[0]);
    assert!(listed[0]["last_error"].is_null(), "{}", listed[0]);
    app.stop().await;
}

#[tokio::test]
async fn feed_errors_are_recorded_and_recovery_fires_only_new_videos() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    yt.publish(CH_A, "old0000000A", "Old");
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let tid = add(&app, &agent, json!({"youtube_channels": [CH_A]})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_polls(&app, &agent, CH_A, 1).await;

    yt.mode(CH_A, Mode::Status(500));
    let failed = wait_polls(&app, &agent, CH_A, 1).await;
    assert!(
        failed["last_error"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    yt.publish(CH_A, "new0000000B", "Published during the outage");
    yt.mode(CH_A, Mode::Garbage);
    let garbage = wait_polls(&app, &agent, CH_A, 1).await;
    assert!(garbage["last_error"].is_string(), "{garbage}");

    yt.mode(CH_A, Mode::Ok);
    let runs = wait_runs(&app, &tid, 1).await;
    assert_eq!(video_ids(&runs), ["new0000000B"]);
    let healthy = wait_polls(&app, &agent, CH_A, 1).await;
    assert!(healthy["last_error"].is_null(), "{healthy}");
    assert_eq!(
        runs_of(&app, &tid).await.len(),
        1,
        "no burst after recovery"
    );
    app.stop().await;
}

#[tokio::test]
async fn when_the_first_poll_fails_videos_published_after_adding_still_fire() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    yt.publish(CH_A, "old0000000A", "Back catalogue");
    yt.mode(CH_A, Mode::Status(500));
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let tid = add(&app, &agent, json!({"youtube_channels": [CH_A]})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = wait_polls(&app, &agent, CH_A, 1).await;
    assert!(
        failed["last_error"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    yt.publish_at(
        CH_A,
        "new0000000B",
        "Published while the feed was down",
        &now,
    );
    yt.mode(CH_A, Mode::Ok);
    let runs = wait_runs(&app, &tid, 1).await;
    assert_eq!(
        video_ids(&runs),
        ["new0000000B"],
        "the back-catalogue stays quiet"
    );
    wait_polls(&app, &agent, CH_A, 1).await;
    assert_eq!(runs_of(&app, &tid).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_duration_filter_uses_the_real_duration_inclusively() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let trigger = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_A],
               "filter_options": {"duration": {"min_seconds": 10, "max_seconds": 60}}}),
    )
    .await;
    assert_eq!(
        trigger["filter_options"],
        json!({"duration": {"min_seconds": 10, "max_seconds": 60}})
    );
    let tid = trigger["id"].as_str().unwrap().to_owned();
    wait_polls(&app, &agent, CH_A, 1).await;
    for (video, seconds) in [
        ("short000000", 5),
        ("minimum0010", 10),
        ("middle00030", 30),
        ("maximum0060", 60),
        ("long0000120", 120),
    ] {
        ytdlp.duration(video, seconds);
        yt.publish(CH_A, video, video);
    }
    // No metadata for this one: skipped with a reason, never guessed.
    yt.publish(CH_A, "unknown0000", "Unknown length");
    wait_runs(&app, &tid, 3).await;
    // Every video was decided in that poll; a later poll changes nothing.
    wait_polls(&app, &agent, CH_A, 1).await;
    assert_eq!(
        video_ids(&runs_of(&app, &tid).await),
        ["maximum0060", "middle00030", "minimum0010"]
    );
    app.stop().await;
}

#[tokio::test]
async fn two_channels_on_two_triggers_call_back_their_own_urls() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    let (hook_a, hook_b) = (Receiver::start().await, Receiver::start().await);
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let ta = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_A], "trigger_callback_url": hook_a.url("/a")}),
    )
    .await;
    let tb = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_B], "trigger_callback_url": hook_b.url("/b"),
               "filter_options": {"duration": {"max_seconds": 100}}}),
    )
    .await;
    assert_ne!(ta["id"], tb["id"]);
    assert_eq!(youtube_triggers(&app, &agent).await.len(), 2);
    wait_polls(&app, &agent, CH_A, 1).await;
    wait_polls(&app, &agent, CH_B, 1).await;

    ytdlp.duration("videoOfB001", 50);
    yt.publish(CH_A, "videoOfA001", "On A");
    yt.publish(CH_B, "videoOfB001", "On B");
    let a = hook_a.wait_for(1, DEADLINE).await[0].json();
    let b = hook_b.wait_for(1, DEADLINE).await[0].json();
    assert_eq!(
        (
            &a["triggered_by"]["channel_id"],
            &a["triggered_by"]["trigger_id"]
        ),
        (&json!(CH_A), &ta["id"])
    );
    assert_eq!(
        (
            &b["triggered_by"]["channel_id"],
            &b["triggered_by"]["trigger_id"]
        ),
        (&json!(CH_B), &tb["id"])
    );
    app.stop().await;
}

#[tokio::test]
async fn adding_is_additive_resolves_handles_and_moves_channels_between_filters() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    yt.handle("@somechannel", CH_C);
    let hook = Receiver::start().await;
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let path = format!("/agent/{agent}/triggers/add_youtube_channels");
    for (body, needle) in [
        (json!({"youtube_channels": []}), "youtube_channels"),
        (
            json!({"youtube_channels": ["not a channel"]}),
            "youtube_channels[0]",
        ),
        (
            json!({"youtube_channels": ["@nobodyhere"]}),
            "youtube_channels[0]",
        ),
        (
            json!({"youtube_channels": [CH_A], "trigger_callback_url": "file:///x"}),
            "trigger_callback_url",
        ),
        (
            json!({"youtube_channels": [CH_A], "filter_options": {"duration": {"min_seconds": 9, "max_seconds": 1}}}),
            "min_seconds",
        ),
        (
            json!({"youtube_channels": [CH_A], "surprise": 1}),
            "surprise",
        ),
    ] {
        let (status, answer) = app.post(&path, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["error"], "validation_error");
        assert!(
            answer["detail"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    assert!(
        youtube_triggers(&app, &agent).await.is_empty(),
        "nothing half-written"
    );

    let first = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_A, "@somechannel",
                                    format!("https://www.youtube.com/channel/{CH_A}"),
                                    "https://www.youtube.com/@somechannel/videos"],
               "trigger_callback_url": hook.url("/1")}),
    )
    .await;
    let ids = |t: &Value| -> Vec<String> {
        t["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["channel_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), [CH_A, CH_C]);
    // Additive; the omitted callback is kept.
    let second = add(&app, &agent, json!({"youtube_channels": [CH_B]})).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(ids(&second), [CH_A, CH_B, CH_C]);
    assert_eq!(second["trigger_callback_url"], hook.url("/1"));
    // Another filter: a second trigger, and CH_B moves to it.
    let filtered = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_B], "filter_options": {"duration": {"min_seconds": 60}}}),
    )
    .await;
    assert_ne!(filtered["id"], first["id"]);
    assert!(filtered["trigger_callback_url"].is_null());
    let triggers = youtube_triggers(&app, &agent).await;
    assert_eq!(triggers.len(), 2);
    let unfiltered = triggers.iter().find(|t| t["id"] == first["id"]).unwrap();
    assert_eq!(ids(unfiltered), [CH_A, CH_C]);
    // null clears the callback.
    let cleared = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_A], "trigger_callback_url": null}),
    )
    .await;
    assert!(cleared["trigger_callback_url"].is_null(), "{cleared}");

    let (status, removed) = app
        .post(
            &format!("/agent/{agent}/triggers/remove_youtube_channels"),
            &json!({"youtube_channels": [CH_B]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["removed"], json!([CH_B]));
    assert_eq!(
        youtube_triggers(&app, &agent).await.len(),
        1,
        "a trigger left without channels is removed"
    );
    app.stop().await;
}

#[tokio::test]
async fn removed_channels_are_no_longer_polled() {
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    let app = spawn(&yt, &ytdlp).await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    add(&app, &agent, json!({"youtube_channels": [CH_A, CH_B]})).await;
    wait_polls(&app, &agent, CH_A, 1).await;
    let (status, answer) = app
        .post(
            &format!("/agent/{agent}/triggers/remove_youtube_channels"),
            &json!({"youtube_channels": [CH_A]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let hits = yt.hits(CH_A);
    // CH_B keeps being polled: two more of its polls are the clock.
    wait_polls(&app, &agent, CH_B, 2).await;
    assert_eq!(yt.hits(CH_A), hits, "the removed channel was polled again");
    app.stop().await;
}
