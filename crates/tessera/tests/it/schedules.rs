//! Schedule triggers: validation, exactly one run per slot even with two
//! schedulers on one database, and one catch-up run after downtime.

use std::collections::BTreeSet;

use chrono::Timelike;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{FileServer, TestApp, test_layer, trim_agent};

/// Every second, so the tests see several slots quickly.
const EVERY_SECOND: &str = "* * * * * *";

async fn trigger_runs(app: &TestApp, schedule: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/trigger/{schedule}/runs?limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["runs"].as_array().unwrap().clone()
}

fn slots(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|r| {
            r["triggered_by"]["scheduled_at"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn wait_for_runs(app: &TestApp, schedule: &str, n: usize) -> Vec<Value> {
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let runs = trigger_runs(app, schedule).await;
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

#[tokio::test]
async fn bad_schedules_are_refused_with_a_clear_reason() {
    let app = TestApp::spawn().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let path = format!("/agent/{agent}/triggers/add_schedule");
    let video = "http://127.0.0.1:9/v.mp4";
    for (body, needle) in [
        (
            json!({"cron_expression": "61 * * * *", "video_urls": [video]}),
            "minute",
        ),
        (
            json!({"cron_expression": "* * *", "video_urls": [video]}),
            "field",
        ),
        (
            json!({"cron_expression": "0 9 * * *", "timezone": "Mars/Olympus", "video_urls": [video]}),
            "Mars/Olympus",
        ),
        (json!({"cron_expression": "0 9 * * *"}), "video_urls"),
        (
            json!({"cron_expression": "0 9 * * *", "video_urls": ["file:///etc/passwd"]}),
            "video_urls[0]",
        ),
        (
            json!({"cron_expression": "0 9 * * *", "video_urls": [video], "update_params": {"nope": {}}}),
            "nope",
        ),
    ] {
        let (status, answer) = app.post(&path, &body).await;
        assert!(status.is_client_error(), "{body} → {status} {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(needle),
            "{body} → {answer}"
        );
    }
    let (_, triggers) = app.get(&format!("/agent/{agent}/triggers")).await;
    assert_eq!(triggers, json!([]), "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn a_schedule_fires_once_per_slot_with_two_schedulers_on_one_database() {
    let files = FileServer::start().await;
    let first = TestApp::spawn().await;
    let dir = first.data_dir.path().to_path_buf();
    // A second process's worth of roles on the same SQLite database.
    let second =
        tessera::app::start(tessera::config::Config::resolve(test_layer(&dir), None).unwrap())
            .await
            .unwrap();
    let agent = first.create_agent(&trim_agent(0, 1000, 160)).await;
    let (status, added) = first
        .post(
            &format!("/agent/{agent}/triggers/add_schedule"),
            &json!({"cron_expression": EVERY_SECOND, "timezone": "Europe/Paris",
                    "video_urls": [files.url("/videos/missing.mp4")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let schedule = added["schedule_id"].as_str().unwrap().to_owned();
    assert!(added["next_run_at"].is_string());

    let runs = wait_for_runs(&first, &schedule, 4).await;
    let fired = slots(&runs);
    let unique: BTreeSet<_> = fired.iter().collect();
    assert_eq!(unique.len(), fired.len(), "a slot fired twice: {fired:?}");
    let trigger = &runs[0]["triggered_by"];
    assert_eq!(trigger["type"], "schedule");
    assert_eq!(trigger["schedule_id"], schedule.as_str());
    assert_eq!(trigger["cron_expression"], EVERY_SECOND);
    assert!(
        trigger["scheduled_at"].as_str().unwrap().ends_with(".000Z"),
        "slots are whole seconds"
    );

    let (_, listed) = first.get(&format!("/agent/{agent}/triggers")).await;
    assert_eq!(listed[0]["schedule_id"], schedule.as_str());
    assert!(listed[0]["last_run_at"].is_string());
    let (status, _) = first
        .post(
            &format!("/agent/{agent}/triggers/remove_schedule"),
            &json!({"schedule_id": schedule}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = first.get(&format!("/agent/{agent}/triggers")).await;
    assert_eq!(listed, json!([]));
    second.shutdown().await;
    first.stop().await;
}

#[tokio::test]
async fn after_downtime_a_missed_slot_fires_once_not_as_a_burst() {
    let files = FileServer::start().await;
    let first = TestApp::spawn().await;
    let agent = first.create_agent(&trim_agent(0, 1000, 160)).await;
    // One slot a minute, a few seconds from now: the server will be down then.
    let slot = (chrono::Utc::now() + chrono::Duration::seconds(6))
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} * * * * *", slot.second());
    let (status, added) = first
        .post(
            &format!("/agent/{agent}/triggers/add_schedule"),
            &json!({"cron_expression": cron, "video_urls": [files.url("/videos/missing.mp4")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let schedule = added["schedule_id"].as_str().unwrap().to_owned();
    let data = first.stop_and_keep_data().await;
    assert!(
        chrono::Utc::now() < slot,
        "the server stopped before its slot"
    );
    // The downtime being simulated (not a wait for work): stay down past the slot.
    let past_slot =
        (slot - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    tokio::time::sleep(past_slot).await;
    let second = TestApp::spawn_in(data).await;
    let runs = wait_for_runs(&second, &schedule, 1).await;
    assert_eq!(
        slots(&runs),
        [slot.format("%Y-%m-%dT%H:%M:%S.000Z").to_string()],
        "the missed slot fired once"
    );
    // The next slot is a minute away, so anything more now would be a burst.
    assert_eq!(trigger_runs(&second, &schedule).await.len(), 1);
    let (status, _) = second
        .post(
            &format!("/agent/{agent}/triggers/remove_schedule"),
            &json!({"schedule_id": schedule}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        trigger_runs(&second, &schedule).await.len(),
        1,
        "a removed schedule's runs stay listable"
    );
    second.stop().await;
}

#[tokio::test]
async fn two_scheduler_processes_on_one_database_fire_each_slot_once() {
    use crate::process::ServerProcess;
    use crate::support::API_KEY;
    let files = FileServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_POLL_INTERVAL_MS", "50")];
    let a = ServerProcess::start(dir.path(), &env);
    let b = ServerProcess::start(dir.path(), &env);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |url: String, body: Value| {
        let client = client.clone();
        async move {
            let r = client
                .post(url)
                .bearer_auth(API_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let agent = post(a.url("/agent/create"), trim_agent(0, 1000, 160)).await;
    let agent = agent["id"].as_str().unwrap();
    let added = post(
        b.url(&format!("/agent/{agent}/triggers/add_schedule")),
        json!({"cron_expression": EVERY_SECOND, "video_urls": [files.url("/videos/missing.mp4")]}),
    )
    .await;
    let schedule = added["schedule_id"].as_str().unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let page: Value = a
            .get_json(&client, &format!("/trigger/{schedule}/runs?limit=100"))
            .await;
        let runs = page["runs"].as_array().unwrap().clone();
        if runs.len() >= 5 {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "only {} runs",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fired = slots(&runs);
    let unique: BTreeSet<_> = fired.iter().collect();
    assert_eq!(
        unique.len(),
        fired.len(),
        "a slot fired twice across processes: {fired:?}"
    );
}
