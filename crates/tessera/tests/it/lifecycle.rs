//! The run lifecycle through the API: lists, cancel, resume, per-node status,
//! per-run overrides, chaining renders, agent edits, and hostile inputs.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{FileServer, Receiver, TestApp, duration, ffprobe, trim_agent};

const DEADLINE: Duration = Duration::from_secs(120);

async fn start_run(app: &TestApp, agent: &str, body: Value) -> String {
    let (status, answer) = app.post(&format!("/agent/{agent}/run"), &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["run_id"].as_str().unwrap().to_owned()
}

async fn probe_output(app: &TestApp, url: &str, name: &str) -> Value {
    let bytes = app
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = app.data_dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    ffprobe(&path)
}

fn video_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
}

/// Processes whose command line mentions `needle` (a run id is part of its work directory).
fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(needle))
        .count()
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_a_cursor() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let a = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let b = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let bad = json!({"video_urls": [files.url("/videos/missing.mp4")]});
    let mut ids = vec![];
    for agent in [&a, &a, &b] {
        let id = start_run(&app, agent, bad.clone()).await;
        app.wait_for_run(&id, DEADLINE).await;
        ids.push(id);
    }
    let (_, page) = app.get("/agent_runs?limit=2").await;
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], ids[2].as_str(), "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/agent_runs?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest["runs"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    let (_, of_a) = app.get(&format!("/agent/{a}/runs")).await;
    assert_eq!(of_a["runs"].as_array().unwrap().len(), 2);
    let (_, failed) = app.get("/agent_runs?status=failed,cancelled").await;
    assert_eq!(failed["runs"].as_array().unwrap().len(), 3);
    let (_, completed) = app.get("/agent_runs?status=completed").await;
    assert_eq!(completed["runs"].as_array().unwrap().len(), 0);
    let (_, future) = app.get("/agent_runs?from=2999-01-01T00:00:00Z").await;
    assert_eq!(future["runs"].as_array().unwrap().len(), 0);
    for bad_query in ["status=done", "from=yesterday", "limit=101", "cursor=nope"] {
        let (status, body) = app.get(&format!("/agent_runs?{bad_query}")).await;
        assert!(status.is_client_error(), "{bad_query}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_agent_can_be_updated_and_deleted_and_its_runs_stay_readable() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let run = start_run(
        &app,
        &agent,
        json!({"video_urls": [files.url("/videos/missing.mp4")]}),
    )
    .await;
    app.wait_for_run(&run, DEADLINE).await;

    let mut graph = trim_agent(0, 2000, 320);
    graph["name"] = json!("renamed");
    graph["description"] = json!("two seconds");
    let (status, updated) = app.post(&format!("/agent/{agent}/update"), &graph).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["agent"]["name"], "renamed");
    let (_, read) = app.get(&format!("/agent/{agent}")).await;
    let cut = read["agent_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["agent_node_id"] == "cut")
        .unwrap();
    assert_eq!(cut["params_used"]["end_ms"], 2000);
    let (status, _) = app
        .post(&format!("/agent/{agent}/update"), &json!({"nodes": []}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nodes without connections");

    let (status, _) = app
        .post(&format!("/agent/{agent}/delete"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/agent/{agent}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [files.url("/videos/bikes.mp4")]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&format!("/agent/{agent}/delete"), &json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/agent_run/{run}")).await.0,
        StatusCode::OK
    );
    let (_, runs) = app.get(&format!("/agent/{agent}/runs")).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn update_params_and_ignore_nodes_change_one_run_only() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let agent = app.create_agent(&trim_agent(0, 3000, 320)).await;
    let video = files.url("/videos/bigbuckbunny.mp4");
    let shorter = start_run(
        &app,
        &agent,
        json!({"video_urls": [video], "update_params": {"cut": {"end_ms": 1500}}}),
    )
    .await;
    let full_width = start_run(
        &app,
        &agent,
        json!({"video_urls": [video], "ignore_nodes": ["small"]}),
    )
    .await;
    let shorter = app.wait_for_run(&shorter, DEADLINE).await;
    let full_width = app.wait_for_run(&full_width, DEADLINE).await;
    assert_eq!(shorter["status"], "completed", "{shorter}");
    assert_eq!(full_width["status"], "completed", "{full_width}");

    let p = probe_output(
        &app,
        shorter["outputs"][0]["video_url"].as_str().unwrap(),
        "short.mp4",
    )
    .await;
    assert!((duration(&p) - 1.5).abs() < 0.15, "{}", duration(&p));
    assert_eq!(video_stream(&p)["width"], 320);
    let p = probe_output(
        &app,
        full_width["outputs"][0]["video_url"].as_str().unwrap(),
        "wide.mp4",
    )
    .await;
    assert_eq!(video_stream(&p)["width"], 1280, "resize was ignored");
    assert!((duration(&p) - 3.0).abs() < 0.15);

    let (status, body) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [video], "ignore_nodes": ["in"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an input cannot be ignored: {body}"
    );
    let (status, _) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [video], "ignore_nodes": ["nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn an_output_feeds_a_later_run_through_node_render_ids() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let first_agent = app.create_agent(&trim_agent(0, 3000, 320)).await;
    let first = start_run(
        &app,
        &first_agent,
        json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")]}),
    )
    .await;
    let first = app.wait_for_run(&first, DEADLINE).await;
    let render_id = first["outputs"][0]["id"].as_str().unwrap().to_owned();

    let second_agent = app.create_agent(&trim_agent(500, 1500, 160)).await;
    let second = start_run(&app, &second_agent, json!({"node_render_ids": [render_id]})).await;
    let second = app.wait_for_run(&second, DEADLINE).await;
    assert_eq!(second["status"], "completed", "{second}");
    let p = probe_output(
        &app,
        second["outputs"][0]["video_url"].as_str().unwrap(),
        "chained.mp4",
    )
    .await;
    assert!((duration(&p) - 1.0).abs() < 0.15);
    assert_eq!(video_stream(&p)["width"], 160);

    let missing = uuid::Uuid::now_v7().to_string();
    let (status, _) = app
        .post(
            &format!("/agent/{second_agent}/run"),
            &json!({"node_render_ids": [missing]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unknown render is not found"
    );
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_run_kills_ffmpeg_cleans_up_and_sends_run_finished() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let receiver = Receiver::start().await;
    // Upscaling to 4K at high quality keeps ffmpeg busy long enough to cancel it.
    let slow = json!({
        "name": "slow",
        "nodes": [
            {"id": "in", "type": "video_input"},
            {"id": "big", "type": "resize", "params": {"width": 3840}},
            {"id": "out", "type": "render", "params": {"crf": 0}}
        ],
        "connections": [{"source": "in", "target": "big"}, {"source": "big", "target": "out"}]
    });
    let agent = app.create_agent(&slow).await;
    let run = start_run(&app, &agent, json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")], "callback_url": receiver.url("/hook")})).await;
    receiver.wait_for(1, DEADLINE).await;
    let until = Instant::now() + DEADLINE;
    while processes_mentioning(&run) == 0 {
        assert!(Instant::now() < until, "ffmpeg never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, answer) = app
        .post(&format!("/agent_run/{run}/cancel"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let finished = app.wait_for_run(&run, Duration::from_secs(30)).await;
    assert_eq!(finished["status"], "cancelled");
    assert!(
        finished["status_message"]
            .as_str()
            .unwrap()
            .contains("cancel")
    );
    let hooks = receiver.wait_for(2, Duration::from_secs(30)).await;
    let last = hooks[1].json();
    assert_eq!(last["flag"], "RUN_FINISHED");
    assert_eq!(
        last["status"], "failed",
        "the seed's enum: nothing was produced"
    );
    assert_eq!(last["cancelled"], true);
    assert_eq!(processes_mentioning(&run), 0, "no ffmpeg left running");
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir.path().join("tmp"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains(&run))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temp files removed: {leftovers:?}");
    let (status, _) = app
        .post(&format!("/agent_run/{run}/cancel"), &json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an ended run cannot be cancelled"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failed_run_resumes_as_a_new_attempt_with_a_new_webhook_pair() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let receiver = Receiver::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let run = start_run(&app, &agent, json!({"video_urls": [files.url("/late/bikes.mp4")], "callback_url": receiver.url("/hook")})).await;
    let failed = app.wait_for_run(&run, DEADLINE).await;
    assert_eq!(failed["status"], "failed");
    files.open_late();
    let (status, answer) = app
        .post(&format!("/agent_run/{run}/resume"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let done = app.wait_for_run(&run, DEADLINE).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2);
    let hooks = receiver
        .wait_for(4, DEADLINE)
        .await
        .iter()
        .map(|r| r.json())
        .collect::<Vec<Value>>();
    let flags: Vec<&str> = hooks.iter().map(|h| h["flag"].as_str().unwrap()).collect();
    assert_eq!(
        flags,
        ["RUN_STARTED", "RUN_FINISHED", "RUN_STARTED", "RUN_FINISHED"]
    );
    assert_eq!(hooks[1]["status"], "failed");
    assert!(hooks.iter().all(|h| h["run_id"] == run.as_str()));
    assert_eq!(hooks.last().unwrap()["status"], "completed");
    let (status, _) = app
        .post(&format!("/agent_run/{run}/resume"), &json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a completed run cannot be resumed"
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_inputs_fail_alone_and_the_good_one_still_renders() {
    let app = TestApp::spawn_with(|l| {
        l.download_max_bytes = Some(20 * 1024 * 1024);
        l.download_timeout_seconds = Some(5);
    })
    .await;
    let files = FileServer::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let urls = [
        "/page.html",
        "/image.png",
        "/truncated.mp4",
        "/endless.mp4",
        "/playlist.m3u8",
        "/videos/bikes.mp4",
    ];
    let run = start_run(
        &app,
        &agent,
        json!({"video_urls": urls.map(|u| files.url(u))}),
    )
    .await;
    let done = app.wait_for_run(&run, DEADLINE).await;
    assert_eq!(done["status"], "partial_complete", "{done}");
    assert_eq!(done["outputs"].as_array().unwrap().len(), 1);
    let errors = done["errors"].as_array().unwrap();
    let failed: Vec<u64> = errors
        .iter()
        .map(|e| e["input_index"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [0, 1, 2, 3, 4], "{errors:?}");
    assert!(
        errors[3]["message"].as_str().unwrap().contains("limit"),
        "the endless stream hit the byte cap: {}",
        errors[3]
    );

    let (_, nodes) = app.get(&format!("/agent_run/{run}/nodes")).await;
    let nodes = nodes["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    let input = nodes.iter().find(|n| n["agent_node_id"] == "in").unwrap();
    assert_eq!(input["status"], "failed");
    assert_eq!(input["errors"].as_array().unwrap().len(), 5);
    let out = nodes.iter().find(|n| n["agent_node_id"] == "out").unwrap();
    assert_eq!(out["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(done["node_status_counts"]["failed"], 4);
    app.stop().await;
}

#[tokio::test]
async fn a_multi_input_agent_joins_clipped_inputs_into_one_output() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let agent = app
        .create_agent(&json!({
            "name": "join",
            "nodes": [
                {"id": "a", "type": "video_input"}, {"id": "b", "type": "video_input"},
                {"id": "join", "type": "concat"}, {"id": "out", "type": "render"}
            ],
            "connections": [{"source": "a", "target": "join"}, {"source": "b", "target": "join"}, {"source": "join", "target": "out"}]
        }))
        .await;
    let bunny = files.url("/videos/bigbuckbunny.mp4");
    let bikes = files.url("/videos/bikes.mp4");
    for (body, expected) in [
        (json!({"video_urls": [bunny]}), StatusCode::BAD_REQUEST),
        (
            json!({"video_inputs": [{"agent_node_id": "a", "video_urls": [bunny]}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"video_inputs": [{"agent_node_id": "a", "video_urls": [bunny, bikes]}, {"agent_node_id": "b", "video_urls": [bikes]}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"video_inputs": [{"agent_node_id": "a", "video_urls": [bunny], "input_clip_start_ms": 3000, "input_clip_end_ms": 1000}, {"agent_node_id": "b", "video_urls": [bikes]}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = app.post(&format!("/agent/{agent}/run"), &body).await;
        assert_eq!(status, expected, "{body} → {answer}");
    }
    let run = start_run(
        &app,
        &agent,
        json!({"video_inputs": [
            {"agent_node_id": "a", "video_urls": [bunny], "input_clip_start_ms": 1000, "input_clip_end_ms": 3000},
            {"agent_node_id": "b", "video_urls": [bikes], "input_clip_end_ms": 2000}
        ]}),
    )
    .await;
    let done = app.wait_for_run(&run, DEADLINE).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(done["outputs"].as_array().unwrap().len(), 1);
    let p = probe_output(
        &app,
        done["outputs"][0]["video_url"].as_str().unwrap(),
        "joined.mp4",
    )
    .await;
    assert!(
        (duration(&p) - 4.0).abs() < 0.2,
        "2 s + 2 s, got {}",
        duration(&p)
    );
    assert_eq!(video_stream(&p)["width"], 1280, "the first input's size");
    assert!(
        p["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["codec_type"] == "audio")
    );
    app.stop().await;
}

#[tokio::test]
async fn clips_give_one_output_per_clip() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let agent = app
        .create_agent(&json!({
            "name": "clips",
            "nodes": [{"id": "in", "type": "video_input"}, {"id": "cut", "type": "clips", "params": {"clip_duration_s": 2}},
                      {"id": "out", "type": "render"}],
            "connections": [{"source": "in", "target": "cut"}, {"source": "cut", "target": "out"}]
        }))
        .await;
    let run = start_run(
        &app,
        &agent,
        json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")]}),
    )
    .await;
    let done = app.wait_for_run(&run, DEADLINE).await;
    assert_eq!(done["status"], "completed", "{done}");
    let outputs = done["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 3, "5.3 s in 2 s clips");
    let mut total = 0.0;
    for (i, o) in outputs.iter().enumerate() {
        total += duration(
            &probe_output(
                &app,
                o["video_url"].as_str().unwrap(),
                &format!("clip{i}.mp4"),
            )
            .await,
        );
    }
    assert!(
        (total - 5.3).abs() < 0.3,
        "the clips add up to the input: {total}"
    );
    app.stop().await;
}

#[tokio::test]
async fn youtube_urls_go_through_yt_dlp_and_fail_clearly_without_it() {
    let stand_in = tempfile::tempdir().unwrap();
    let script = stand_in.path().join("yt-dlp");
    // A stand-in speaking yt-dlp's command line: copies a fixture to --output.
    let fixture = crate::support::fixtures_dir().join("bikes.mp4");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nout=''\nwhile [ $# -gt 0 ]; do case \"$1\" in --output) out=\"$2\"; shift;; esac; shift; done\ncp '{}' \"$out\"\n",
            fixture.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let with = TestApp::spawn_with(|l| {
        l.ytdlp_path = Some(script.clone());
        // Never look up the real name: answer it with loopback.
        l.dns_overrides = Some("www.youtube.com=127.0.0.1".into());
    })
    .await;
    let agent = with.create_agent(&trim_agent(0, 1000, 160)).await;
    let run = start_run(
        &with,
        &agent,
        json!({"video_urls": ["https://www.youtube.com/watch?v=aqz-KE-bpKQ"]}),
    )
    .await;
    let done = with.wait_for_run(&run, DEADLINE).await;
    assert_eq!(done["status"], "completed", "{done}");
    with.stop().await;

    let without = TestApp::spawn_with(|l| {
        l.ytdlp_path = Some("/nonexistent/yt-dlp".into());
        l.dns_overrides = Some("www.youtube.com=127.0.0.1".into());
    })
    .await;
    let agent = without.create_agent(&trim_agent(0, 1000, 160)).await;
    let run = start_run(
        &without,
        &agent,
        json!({"video_urls": ["https://www.youtube.com/watch?v=aqz-KE-bpKQ"]}),
    )
    .await;
    let done = without.wait_for_run(&run, DEADLINE).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["status_message"].as_str().unwrap().contains("yt-dlp"),
        "{done}"
    );
    without.stop().await;
}

#[tokio::test]
async fn cancelling_a_run_stops_its_download_at_once() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    // An endless body: without the cancel, the download would run for the default hour.
    let run = start_run(
        &app,
        &agent,
        json!({"video_urls": [files.url("/endless.mp4")]}),
    )
    .await;
    let until = Instant::now() + DEADLINE;
    while !app
        .data_dir
        .path()
        .join("tmp")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        assert!(Instant::now() < until, "the download never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = app
        .post(&format!("/agent_run/{run}/cancel"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let done = app.wait_for_run(&run, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    app.stop().await;
}

#[tokio::test]
async fn the_runs_of_an_agent_that_never_existed_are_not_found() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .get(&format!("/agent/{}/runs", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}
