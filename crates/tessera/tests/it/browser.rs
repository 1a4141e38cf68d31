//! The dashboard in a real browser: Debian's Chromium, headless, driven
//! through chromedriver (`webdriver.rs`). Screenshots land in
//! `target/test-artifacts/dashboard/`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::spawn;
use crate::faults::{Behaviour, FaultServer};
use crate::support::{API_KEY, FileServer, Receiver, TestApp, trim_agent};
use crate::webdriver::{Browser, artifacts_dir};

const DEADLINE: Duration = Duration::from_secs(30);

fn shot(name: &str) -> std::path::PathBuf {
    artifacts_dir()
        .parent()
        .expect("artifacts live under test-artifacts/")
        .join("dashboard")
        .join(name)
}

async fn login(browser: &Browser, app: &TestApp, next: &str) {
    browser.goto(&app.url(next)).await;
    browser.find("#api_key").await.send_keys(API_KEY).await;
    browser
        .find("section.login button[type=submit]")
        .await
        .click()
        .await;
    browser.wait_for_text("h1", "").await;
}

/// Wait until the API lists `n` deliveries with this status.
async fn wait_deliveries(app: &TestApp, status: &str, n: usize) -> Vec<Value> {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, page) = app
            .get(&format!("/webhook_deliveries?status={status}"))
            .await;
        let list = page["deliveries"].as_array().cloned().unwrap_or_default();
        if list.len() >= n {
            return list;
        }
        assert!(tokio::time::Instant::now() < until, "{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_finds_a_failed_webhook_and_resends_it_in_chromium() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let files = FileServer::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    receiver.set_status(500);
    let (status, out) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [files.url("/videos/bikes.mp4")], "callback_url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let run_id = out["run_id"].as_str().unwrap().to_owned();
    let run = app.wait_for_run(&run_id, DEADLINE).await;
    assert_eq!(run["status"], "completed", "{run}");
    wait_deliveries(&app, "failed", 2).await;

    let browser = Browser::start().await;
    // Pages without a session go to the login form, which comes back.
    login(&browser, &app, "/dashboard/runs").await;
    assert!(browser.current_url().await.ends_with("/dashboard/runs"));
    browser.find("a[href='/dashboard']").await.click().await;
    browser.wait_for_text("h1", "Overview").await;
    browser
        .wait_for_text("#deliveries-24h dd[data-count=failed]", "2")
        .await;
    browser.screenshot(shot("01-overview.png")).await;

    // Runs → the run: thumbnails load, the output plays from a signed URL.
    browser
        .find("a[href='/dashboard/runs']")
        .await
        .click()
        .await;
    browser.find("a.run-link").await.click().await;
    browser.wait_for_text("#run-status", "completed").await;
    browser
        .wait_until("the input thumbnail has loaded", async || {
            browser
                .execute(
                    "const i = document.querySelector('img.input-thumb'); \
                     return !!i && i.complete && i.naturalWidth > 0;",
                    &[],
                )
                .await
                == json!(true)
        })
        .await;
    let src = browser
        .execute(
            "return document.querySelector('#outputs video').getAttribute('src');",
            &[],
        )
        .await;
    let src = src.as_str().expect("an output video").to_owned();
    assert!(
        src.starts_with("/files/") && src.contains("signature="),
        "{src}"
    );
    // Seeking asks for byte ranges, which the signed URL serves.
    let ranged = app
        .http
        .get(app.url(&src))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap().len(), 100);
    browser
        .wait_until("the output's poster and metadata loaded", async || {
            browser
                .execute(
                    "const v = document.querySelector('#outputs video'); \
                     return v.readyState >= 1 && v.duration > 0.5;",
                    &[],
                )
                .await
                == json!(true)
        })
        .await;
    browser.wait_for_text("#nodes", "completed").await;
    browser
        .wait_for_text("#run-deliveries", "RUN_FINISHED")
        .await;
    browser.screenshot(shot("02-run.png")).await;
    browser.set_window_size(390, 844).await;
    browser.screenshot(shot("03-run-phone.png")).await;
    browser.set_window_size(1280, 900).await;

    // Webhooks → Failed → a delivery → Resend once the receiver is fixed.
    browser
        .find("a[href='/dashboard/webhooks']")
        .await
        .click()
        .await;
    browser.find("#failed-view").await.click().await;
    browser.wait_for_text("h1", "Failed webhooks").await;
    browser.find("a.delivery-link").await.click().await;
    browser.wait_for_text("#delivery-status", "failed").await;
    browser
        .wait_for_text(".attempt[data-attempt='1']", "HTTP 500")
        .await;
    receiver.set_status(200);
    let before = receiver.received().len();
    browser
        .find("form[action$='/resend'] button")
        .await
        .click()
        .await;
    let got = receiver.wait_for(before + 1, DEADLINE).await;
    let resent = got.last().unwrap();
    browser
        .wait_for_text(".attempt[data-attempt='2']", "delivered")
        .await;
    browser.wait_for_text("#delivery-status", "succeeded").await;
    let source = browser.source().await;
    assert!(
        source.contains(resent.header("webhook-id").unwrap()),
        "the page names the event the receiver got"
    );
    browser.screenshot(shot("04-resent.png")).await;

    // Send test webhook.
    browser
        .find("header a[href='/dashboard/webhooks']")
        .await
        .click()
        .await;
    browser
        .find("a[href='/dashboard/webhooks/test']")
        .await
        .click()
        .await;
    browser
        .find("#url")
        .await
        .send_keys(&receiver.url("/from-the-ui"))
        .await;
    browser
        .find("#test-webhook button[type=submit]")
        .await
        .click()
        .await;
    browser
        .wait_for_text("#test-result", "HTTP 200 OK · delivered")
        .await;
    let got = receiver.wait_for(before + 2, DEADLINE).await;
    assert_eq!(got.last().unwrap().json()["flag"], "TEST");
    browser.screenshot(shot("05-test-webhook.png")).await;

    // Logout ends the session.
    browser.find("form.logout button").await.click().await;
    browser.wait_for_text("section.login h1", "Tessera").await;
    browser.goto(&app.url("/dashboard/webhooks")).await;
    browser.wait_for_text("section.login h1", "Tessera").await;
    assert!(browser.current_url().await.contains("/dashboard/login"));
    browser.screenshot(shot("06-logged-out.png")).await;
    browser.quit().await;
    app.stop().await;
}

/// What the hostile receiver answers: markup in the reason phrase, a header
/// and the body, each trying to run script and set `window.__pwned`.
fn hostile_response() -> Vec<u8> {
    let body = "<script>window.__pwned = 'body'; alert('body')</script>\
                <img src=x onerror=\"window.__pwned = 'img'; alert('img')\">\
                <svg onload=\"alert('svg')\"></svg>";
    format!(
        "HTTP/1.1 500 <script>alert('reason')</script>\r\n\
         x-evil: <img src=x onerror=\"alert('header')\">\r\n\
         content-type: text/html\r\n\
         content-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_receivers_and_titles_never_run_script_in_the_dashboard() {
    use crate::youtube::{CH_A, FakeYoutube, FakeYtDlp, add, wait_polls, wait_runs};
    let hostile = FaultServer::start(Behaviour::Raw(hostile_response())).await;
    let (yt, ytdlp) = (FakeYoutube::start().await, FakeYtDlp::new());
    let app = crate::youtube::spawn(&yt, &ytdlp).await;
    let mut agent = trim_agent(0, 1000, 160);
    agent["name"] = json!("<script>alert('agent')</script><b>bold</b>");
    let agent = app.create_agent(&agent).await;
    let trigger = add(
        &app,
        &agent,
        json!({"youtube_channels": [CH_A], "trigger_callback_url": hostile.url()}),
    )
    .await;
    wait_polls(&app, &agent, CH_A, 1).await;
    let title = "<script>alert('title')</script><img src=x onerror=alert('title')>";
    // The feed is XML: the title arrives escaped there, as YouTube sends it.
    yt.publish(
        CH_A,
        "evil0000000",
        &title
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    );
    let runs = wait_runs(&app, trigger["id"].as_str().unwrap(), 1).await;
    let run_id = runs[0]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(runs[0]["triggered_by"]["video_title"], title);
    app.wait_for_run(&run_id, DEADLINE).await;
    let failed = wait_deliveries(&app, "failed", 2).await;

    // The CSP forbids script on every page, whatever else happens.
    let page = app
        .http
        .get(app.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    let browser = Browser::start().await;
    login(&browser, &app, "/dashboard").await;
    let delivery = failed[0]["id"].as_str().unwrap();
    for path in [
        "/dashboard".to_owned(),
        "/dashboard/runs".into(),
        format!("/dashboard/runs/{run_id}"),
        "/dashboard/webhooks?status=failed".into(),
        format!("/dashboard/webhooks/{delivery}"),
        "/dashboard/agents".into(),
        format!("/dashboard/agents/{agent}"),
        "/dashboard/triggers".into(),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_for_text("h1", "").await;
        // Open every collapsed section so hidden markup would render too.
        browser
            .execute(
                "document.querySelectorAll('details').forEach(d => d.open = true); return true;",
                &[],
            )
            .await;
        assert_eq!(
            browser.alert_text().await,
            None,
            "a dialog opened on {path}"
        );
        let pwned = browser.execute("return typeof window.__pwned;", &[]).await;
        assert_eq!(pwned, json!("undefined"), "script ran on {path}");
        let injected = browser
            .execute(
                "return document.querySelectorAll('main script, main img[src=x], main svg, main b').length;",
                &[],
            )
            .await;
        assert_eq!(injected, json!(0), "markup was injected on {path}");
    }

    // The hostile text is there, visible and inert.
    browser
        .goto(&app.url(&format!("/dashboard/webhooks/{delivery}")))
        .await;
    browser
        .execute(
            "document.querySelectorAll('details').forEach(d => d.open = true); return true;",
            &[],
        )
        .await;
    browser
        .wait_for_text(".attempt .reason", "<script>alert('reason')</script>")
        .await;
    browser
        .wait_for_text("pre.response", "<script>window.__pwned = 'body'")
        .await;
    browser
        .wait_for_text(
            ".attempt dl.headers",
            "<img src=x onerror=\"alert('header')\">",
        )
        .await;
    browser.screenshot(shot("07-hostile-delivery.png")).await;
    browser
        .goto(&app.url(&format!("/dashboard/runs/{run_id}")))
        .await;
    browser.wait_for_text("main", title).await;
    browser
        .wait_for_text("main", "<script>alert('agent')</script><b>bold</b>")
        .await;
    browser.screenshot(shot("08-hostile-run.png")).await;
    assert_eq!(browser.alert_text().await, None);
    browser.quit().await;
    app.stop().await;
}
