//! The dashboard over plain HTTP: sessions, CSRF, isolation between users,
//! secrets shown once, escaping. The browser tests (`browser.rs`) drive the
//! same pages in Chromium.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::support::{API_KEY, FileServer, Receiver, TestApp};

const DEADLINE: Duration = Duration::from_secs(20);

/// A browser-like client of the dashboard: keeps its session cookie, never
/// follows redirects, and sends the page's CSRF token with forms.
pub struct Dash {
    base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    pub csrf: String,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A receiver that answers every POST with the request's headers, as many
/// debugging endpoints do; returns its base URL.
async fn echo_receiver() -> String {
    async fn echo(headers: axum::http::HeaderMap) -> String {
        headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
            .collect()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/echo", axum::routing::post(echo));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The value of `<input … name="{name}" value="…">` in a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Dash {
    /// A client with no session yet.
    pub fn anonymous(app: &TestApp) -> Dash {
        Dash {
            base: app.url(""),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    /// Log in with `key` through the login form.
    pub async fn login(app: &TestApp, key: &str) -> Dash {
        let mut dash = Dash::anonymous(app);
        let page = dash.login_with(key).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let home = dash.get("/dashboard").await;
        assert_eq!(home.status, StatusCode::OK);
        dash.csrf = input_value(&home.body, "csrf").expect("a CSRF token on the page");
        dash
    }

    pub async fn login_with(&mut self, key: &str) -> Page {
        let form = self.get("/dashboard/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = input_value(&form.body, "csrf").unwrap();
        self.send_form(
            "/dashboard/login",
            &[("csrf", &token), ("api_key", key)],
            &[],
        )
        .await
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() && !set.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    async fn page(&mut self, r: reqwest::Response) -> Page {
        let status = r.status();
        let headers = r.headers().clone();
        self.keep_cookies(&headers);
        Page {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.page(r).await
    }

    /// POST a form with this session's CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.send_form(path, &all, &[]).await
    }

    /// POST a body of any type.
    pub async fn send_raw(&mut self, path: &str, content_type: &str, body: String) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        self.page(r).await
    }

    /// POST exactly these fields and extra headers.
    pub async fn send_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(fields);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        self.page(r).await
    }
}

/// Create a second user with its own API key.
pub async fn second_user(app: &TestApp, key: &str) {
    let store = app.store();
    let now = chrono::Utc::now().timestamp_millis();
    let user = store.create_user(now).await.unwrap();
    store
        .create_api_key(tessera::store::NewApiKey {
            user_id: user,
            name: "second".into(),
            key_hash: tessera::domain::signing::hash_api_key(key),
            created_at: now,
        })
        .await
        .unwrap();
}

/// A failed `TEST` delivery (the receiver answers 500, no retries); returns its id.
pub async fn failed_delivery(app: &TestApp, receiver: &Receiver) -> String {
    receiver.set_status(500);
    let (status, out) = app
        .post(
            "/webhooks/test",
            &json!({"callback_url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let id = out["delivery_id"].as_str().unwrap().to_owned();
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, d) = app.get(&format!("/webhook_deliveries/{id}")).await;
        if d["status"] == "failed" {
            return id;
        }
        assert!(tokio::time::Instant::now() < until, "{d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A run whose input cannot be downloaded: it fails fast, without ffmpeg.
pub async fn failed_run(app: &TestApp, files: &FileServer, agent_name: &str) -> String {
    let agent = app
        .create_agent(&json!({
            "name": agent_name,
            "nodes": [{"id": "in", "type": "video_input"}, {"id": "out", "type": "render"}],
            "connections": [{"source": "in", "target": "out"}],
        }))
        .await;
    let (status, out) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [files.url("/videos/missing.mp4")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let id = out["run_id"].as_str().unwrap().to_owned();
    app.wait_for_run(&id, DEADLINE).await;
    id
}

pub async fn spawn() -> TestApp {
    TestApp::spawn_with(|l| l.webhook_max_retries = Some(0)).await
}

const PAGES: &[&str] = &[
    "/dashboard",
    "/dashboard/runs",
    "/dashboard/runs/new",
    "/dashboard/webhooks",
    "/dashboard/webhooks?status=failed",
    "/dashboard/webhooks/test",
    "/dashboard/agents",
    "/dashboard/triggers",
    "/dashboard/uploads",
    "/dashboard/settings",
];

#[tokio::test]
async fn pages_need_a_session_which_a_valid_key_opens_and_logout_closes() {
    let app = spawn().await;
    let mut anon = Dash::anonymous(&app);
    for path in PAGES {
        let page = anon.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location()
                .starts_with("/dashboard/login?next=%2Fdashboard"),
            "{path} → {}",
            page.location()
        );
    }
    // A wrong key: 401, the form again, no session.
    let refused = anon.login_with("mk_wrong").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("That API key is not valid."));
    assert!(anon.cookies.iter().all(|(k, _)| k != "tessera_session"));
    // The login form itself needs its token.
    let mut fresh = Dash::anonymous(&app);
    let page = fresh
        .send_form("/dashboard/login", &[("api_key", API_KEY)], &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    let mut dash = Dash::anonymous(&app);
    let form = dash
        .get("/dashboard/login?next=%2Fdashboard%2Fwebhooks")
        .await;
    let token = input_value(&form.body, "csrf").unwrap();
    assert_eq!(
        input_value(&form.body, "next").as_deref(),
        Some("/dashboard/webhooks")
    );
    let login = dash
        .send_form(
            "/dashboard/login",
            &[
                ("csrf", &token),
                ("api_key", API_KEY),
                ("next", "/dashboard/webhooks"),
            ],
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/dashboard/webhooks");
    let set = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tessera_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/dashboard"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    // An open redirect is not possible through `next`.
    let mut other = Dash::anonymous(&app);
    let form = other.get("/dashboard/login").await;
    let token = input_value(&form.body, "csrf").unwrap();
    let login = other
        .send_form(
            "/dashboard/login",
            &[
                ("csrf", &token),
                ("api_key", API_KEY),
                ("next", "//evil.test/x"),
            ],
            &[],
        )
        .await;
    assert_eq!(login.location(), "/dashboard");

    for path in PAGES {
        let page = dash.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(!page.body.contains("<script"), "{path}");
    }
    let missing = dash.get("/dashboard/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("<html"));
    assert!(missing.headers.contains_key("content-security-policy"));

    let home = dash.get("/dashboard").await;
    dash.csrf = input_value(&home.body, "csrf").unwrap();
    let out = dash.post("/dashboard/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(dash.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_or_from_another_site_change_nothing() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let files = FileServer::start().await;
    let delivery = failed_delivery(&app, &receiver).await;
    let run = failed_run(&app, &files, "agent").await;
    let (_, agents) = app.get("/agents").await;
    let agent = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    let mut dash = Dash::login(&app, API_KEY).await;
    let other = Dash::login(&app, API_KEY).await;
    assert_ne!(dash.csrf, other.csrf, "tokens are per session");
    let keys_before = app
        .store()
        .list_api_keys(app_user(&app).await)
        .await
        .unwrap();
    let forms: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "/dashboard/runs".into(),
            vec![
                ("agent_id", agent.clone()),
                ("video_urls", files.url("/videos/bikes.mp4")),
            ],
        ),
        (format!("/dashboard/runs/{run}/cancel"), vec![]),
        (format!("/dashboard/webhooks/{delivery}/resend"), vec![]),
        (
            "/dashboard/webhooks/test".into(),
            vec![("url", receiver.url("/hook"))],
        ),
        (
            "/dashboard/settings/secret".into(),
            vec![("action", "generate".into())],
        ),
        (
            "/dashboard/settings/signing_key".into(),
            vec![("action", "rotate".into())],
        ),
        (
            "/dashboard/settings/keys".into(),
            vec![("name", "x".into())],
        ),
        (
            format!("/dashboard/settings/keys/{}/revoke", keys_before[0].id),
            vec![],
        ),
        ("/dashboard/logout".into(), vec![]),
    ];
    let received = receiver.received().len();
    let (_, key_before) = app.get("/webhook_signing_key").await;
    for (path, fields) in &forms {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // No token.
        let page = dash.send_form(path, &fields, &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
        // Another session's token.
        let mut with_other = vec![("csrf", other.csrf.as_str())];
        with_other.extend_from_slice(&fields);
        let page = dash.send_form(path, &with_other, &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        // The right token, but the browser says the form came from elsewhere.
        let own = dash.csrf.clone();
        let mut good = vec![("csrf", own.as_str())];
        good.extend_from_slice(&fields);
        let page = dash
            .send_form(path, &good, &[("sec-fetch-site", "cross-site")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        let page = dash
            .send_form(path, &good, &[("origin", "http://evil.test")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing changed.
    let (_, runs) = app.get("/agent_runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    let (_, d) = app.get(&format!("/webhook_deliveries/{delivery}")).await;
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(receiver.received().len(), received);
    let (_, secret) = app.get("/webhook_secret").await;
    assert_eq!(secret["configured"], false, "{secret}");
    let (_, key_after) = app.get("/webhook_signing_key").await;
    assert_eq!(key_before, key_after);
    let keys_after = app
        .store()
        .list_api_keys(app_user(&app).await)
        .await
        .unwrap();
    assert_eq!(keys_after.len(), keys_before.len());
    assert_eq!(dash.get("/dashboard").await.status, StatusCode::OK);
    // The same session's own token works (the check is not just refusing everything).
    let page = dash
        .post("/dashboard/settings/keys", &[("name", "made by form")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    app.stop().await;
}

async fn app_user(app: &TestApp) -> tessera::domain::ids::UserId {
    app.store().default_user(0).await.unwrap()
}

#[tokio::test]
async fn a_session_cannot_see_or_act_on_another_users_data() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let files = FileServer::start().await;
    let delivery = failed_delivery(&app, &receiver).await;
    let run = failed_run(&app, &files, "alice's agent").await;
    let (_, agents) = app.get("/agents").await;
    let agent = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    let alice_keys = app
        .store()
        .list_api_keys(app_user(&app).await)
        .await
        .unwrap();

    const BOB: &str = "mk_bobkey0123456789abcdefghijklmnopqrstu";
    second_user(&app, BOB).await;
    let mut bob = Dash::login(&app, BOB).await;
    for path in [
        format!("/dashboard/runs/{run}"),
        format!("/dashboard/webhooks/{delivery}"),
        format!("/dashboard/agents/{agent}"),
    ] {
        let page = bob.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        "/dashboard",
        "/dashboard/runs",
        "/dashboard/webhooks?status=failed",
        "/dashboard/agents",
        "/dashboard/triggers",
        "/dashboard/settings",
    ] {
        let page = bob.get(path).await;
        assert_eq!(page.status, StatusCode::OK);
        for theirs in [&run, &delivery, &agent] {
            assert!(
                !page.body.contains(theirs.as_str()),
                "{path} shows {theirs}"
            );
        }
        assert!(!page.body.contains("alice"), "{path}");
    }
    let received = receiver.received().len();
    let page = bob
        .post(&format!("/dashboard/webhooks/{delivery}/resend"), &[])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = bob
        .post(&format!("/dashboard/runs/{run}/cancel"), &[])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = bob
        .post(
            "/dashboard/runs",
            &[
                ("agent_id", &agent),
                ("video_urls", &files.url("/videos/bikes.mp4")),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = bob
        .post(
            &format!("/dashboard/settings/keys/{}/revoke", alice_keys[0].id),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // Alice's things are untouched.
    let (_, d) = app.get(&format!("/webhook_deliveries/{delivery}")).await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(receiver.received().len(), received);
    let (_, runs) = app.get("/agent_runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/whoami").await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn secrets_and_keys_are_shown_once_then_masked() {
    let app = spawn().await;
    let receiver = Receiver::start().await;
    let mut dash = Dash::login(&app, API_KEY).await;

    // A generated webhook secret is on the answer page only.
    let page = dash
        .post("/dashboard/settings/secret", &[("action", "generate")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let (_, secret) = app.get("/webhook_secret").await;
    assert_eq!(secret["configured"], true);
    let value = secret_value(&page.body);
    assert!(value.starts_with("mws_"), "{value}");
    let settings = dash.get("/dashboard/settings").await;
    assert!(!settings.body.contains(&value));
    assert!(
        settings
            .body
            .contains(&format!("••••{}", &value[value.len() - 4..]))
    );

    // One's own secret: saved, never shown back in full.
    let mine = "my-own-secret-0123456789";
    let page = dash
        .post(
            "/dashboard/settings/secret",
            &[("action", "set"), ("secret", mine)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let settings = dash.get("/dashboard/settings").await;
    assert!(!settings.body.contains(mine));
    let bad = dash
        .post(
            "/dashboard/settings/secret",
            &[("action", "set"), ("secret", "short")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("8 to 256"), "{}", bad.body);

    // Deliveries show the headers they carried, the secret masked.
    receiver.set_status(200);
    let page = dash
        .post("/dashboard/webhooks/test", &[("url", &receiver.url("/ok"))])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("HTTP 200 OK · <span class=\"ok\">delivered"),
        "{}",
        page.body
    );
    let sent = receiver.wait_for(1, DEADLINE).await;
    let signature = sent[0].header("webhook-signature").unwrap().to_owned();
    let link = "id=\"test-delivery\" href=\"/dashboard/webhooks/";
    let at = page.body.find(link).expect("a link to the delivery") + link.len();
    let delivery = page.body[at..at + 36].to_owned();
    let detail = dash.get(&format!("/dashboard/webhooks/{delivery}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("x-mosaic-signature"));
    assert!(!detail.body.contains(mine), "the secret is on the page");
    let mac = signature.split_once(',').unwrap().1;
    assert!(
        !detail.body.contains(mac),
        "a full signature is on the page"
    );
    assert!(detail.body.contains(&mac[..6]));
    let event_id = sent[0].header("webhook-id").unwrap();
    assert!(detail.body.contains(event_id));
    // What went out includes what the HTTP client adds.
    assert!(
        detail.body.contains("<dt class=\"mono\">accept</dt>"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("<dt class=\"mono\">host</dt>"));

    // A receiver that echoes its request back cannot put the secret on the page.
    let echo = echo_receiver().await;
    let page = dash
        .post(
            "/dashboard/webhooks/test",
            &[("url", &format!("{echo}/echo"))],
        )
        .await;
    assert!(
        page.body
            .contains("HTTP 200 OK · <span class=\"ok\">delivered"),
        "{}",
        page.body
    );
    let at = page.body.find(link).expect("a link to the delivery") + link.len();
    let detail = dash
        .get(&format!("/dashboard/webhooks/{}", &page.body[at..at + 36]))
        .await;
    assert!(detail.body.contains("[redacted]"), "{}", detail.body);
    assert!(
        !detail.body.contains(mine),
        "an echoed secret is on the page"
    );
    let (_, deliveries) = app.get("/webhook_deliveries?limit=1").await;
    let id = deliveries["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, logged) = app.get(&format!("/webhook_deliveries/{id}")).await;
    assert!(
        !logged.to_string().contains(mine),
        "an echoed secret is logged: {logged}"
    );

    // The signing key: masked, shown on request, rotated on request.
    let (_, key) = app.get("/webhook_signing_key").await;
    let key = key["key"].as_str().unwrap().to_owned();
    assert!(!dash.get("/dashboard/settings").await.body.contains(&key));
    let shown = dash
        .post("/dashboard/settings/signing_key", &[("action", "reveal")])
        .await;
    assert_eq!(secret_value(&shown.body), key);
    let rotated = dash
        .post("/dashboard/settings/signing_key", &[("action", "rotate")])
        .await;
    let new_key = secret_value(&rotated.body);
    assert_ne!(new_key, key);
    let (_, now) = app.get("/webhook_signing_key").await;
    assert_eq!(now["key"], new_key.as_str());

    // API keys: a new one is shown once and works; revoking ends it and the
    // sessions it opened; the last key cannot be revoked.
    let created = dash
        .post("/dashboard/settings/keys", &[("name", "ci <b>bot</b>")])
        .await;
    assert_eq!(created.status, StatusCode::OK);
    assert!(created.body.contains("ci &lt;b&gt;bot&lt;/b&gt;"));
    let new_key = secret_value(&created.body);
    assert!(new_key.starts_with("mk_"));
    assert!(
        !dash
            .get("/dashboard/settings")
            .await
            .body
            .contains(&new_key)
    );
    let whoami = |key: String| {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = app.url("/whoami");
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(whoami(new_key.clone()).await, StatusCode::OK);
    let mut second = Dash::login(&app, &new_key).await;
    let user = app_user(&app).await;
    let keys = app.store().list_api_keys(user).await.unwrap();
    let new_id = keys.iter().find(|k| k.name == "ci <b>bot</b>").unwrap().id;
    let revoked = dash
        .post(&format!("/dashboard/settings/keys/{new_id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(whoami(new_key.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(second.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    let keys = app.store().list_api_keys(user).await.unwrap();
    assert_eq!(keys.len(), 1);
    let last = dash
        .post(
            &format!("/dashboard/settings/keys/{}/revoke", keys[0].id),
            &[],
        )
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert!(last.body.contains("last API key"));
    assert_eq!(whoami(API_KEY.into()).await, StatusCode::OK);
    app.stop().await;
}

/// The one-time value on a settings answer page.
fn secret_value(html: &str) -> String {
    let at = html
        .find("id=\"revealed-value\"")
        .expect("a revealed value");
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find('<').unwrap();
    rest[start..end].to_owned()
}

#[tokio::test]
async fn bad_form_input_is_a_clear_4xx_page_that_writes_nothing() {
    let app = spawn().await;
    let files = FileServer::start().await;
    failed_run(&app, &files, "agent").await;
    let (_, agents) = app.get("/agents").await;
    let agent = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    let mut dash = Dash::login(&app, API_KEY).await;
    /// Form fields, the expected status, and a phrase the page must contain.
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("agent_id", &agent), ("video_urls", "")],
            StatusCode::BAD_REQUEST,
            "video",
        ),
        (
            vec![
                ("agent_id", &agent),
                ("video_urls", "ftp://127.0.0.1/x.mp4"),
            ],
            StatusCode::BAD_REQUEST,
            "input 0",
        ),
        (
            vec![
                ("agent_id", &agent),
                ("video_urls", "http://169.254.169.254/latest"),
            ],
            StatusCode::BAD_REQUEST,
            "input 0",
        ),
        (
            vec![
                ("agent_id", &agent),
                ("video_urls", "http://127.0.0.1/a.mp4"),
                ("callback_url", "not a url"),
            ],
            StatusCode::BAD_REQUEST,
            "callback_url",
        ),
        (
            vec![
                ("agent_id", "nope"),
                ("video_urls", "http://127.0.0.1/a.mp4"),
            ],
            StatusCode::NOT_FOUND,
            "agent not found",
        ),
    ];
    for (fields, status, needle) in cases {
        let page = dash.post("/dashboard/runs", &fields).await;
        assert_eq!(page.status, status, "{fields:?}: {}", page.body);
        assert!(page.body.contains(needle), "{fields:?}: {}", page.body);
    }
    let page = dash
        .post(
            "/dashboard/webhooks/test",
            &[("url", "http://10.0.0.1/hook")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = dash.get("/dashboard/runs?status=bogus").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Malformed addresses and wrong methods get the dashboard's own error
    // page, with its security headers, not a bare rejection.
    for (path, status) in [
        (
            "/dashboard/runs?status=failed&status=queued",
            StatusCode::BAD_REQUEST,
        ),
        ("/dashboard/runs/%FF", StatusCode::BAD_REQUEST),
        ("/dashboard/webhooks/%FF%FE", StatusCode::BAD_REQUEST),
        ("/dashboard/settings/keys", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let page = dash.get(path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(
            page.body.starts_with("<!DOCTYPE html>"),
            "{path}: {}",
            page.body
        );
        assert!(
            page.headers.contains_key("content-security-policy"),
            "{path}"
        );
        assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
    }
    // A refused run keeps what was typed, on the form.
    let page = dash
        .post(
            "/dashboard/runs",
            &[("agent_id", &agent), ("video_urls", "not a url at all")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("id=\"start-run\""), "{}", page.body);
    assert!(
        page.body.contains(">not a url at all</textarea>"),
        "{}",
        page.body
    );
    let page = dash.post("/dashboard/webhooks/test", &[("url", "")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("the URL is empty"), "{}", page.body);
    assert!(page.body.contains("id=\"test-webhook\""), "{}", page.body);
    let page = dash.get("/dashboard/webhooks?cursor=bogus").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // A JSON body is not a form.
    let page = dash
        .send_raw(
            "/dashboard/settings/keys",
            "application/json",
            json!({"csrf": dash.csrf, "name": "json"}).to_string(),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let (_, runs) = app.get("/agent_runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    let (_, deliveries) = app.get("/webhook_deliveries").await;
    assert!(deliveries["deliveries"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn user_text_is_escaped_and_ui_runs_say_so() {
    let app = spawn().await;
    let files = FileServer::start().await;
    let hostile = "<script>alert('agent')</script><img src=x onerror=alert(1)>";
    let run = failed_run(&app, &files, hostile).await;
    let mut dash = Dash::login(&app, API_KEY).await;
    for path in [
        format!("/dashboard/runs/{run}"),
        "/dashboard/runs".into(),
        "/dashboard/agents".into(),
    ] {
        let page = dash.get(&path).await;
        assert!(!page.body.contains(hostile), "{path}");
        assert!(
            page.body.contains(
                "&lt;script&gt;alert('agent')&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
            ),
            "{path}: {}",
            page.body
        );
    }
    // Started from the UI: triggered_by says so.
    let (_, agents) = app.get("/agents").await;
    let agent = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    let page = dash
        .post(
            "/dashboard/runs",
            &[
                ("agent_id", &agent),
                ("video_urls", &files.url("/videos/missing.mp4")),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = page.location().rsplit('/').next().unwrap().to_owned();
    let run = app.wait_for_run(&id, DEADLINE).await;
    assert_eq!(run["triggered_by"]["type"], "manual");
    assert_eq!(run["triggered_by"]["source"], "ui");
    let detail = dash.get(&format!("/dashboard/runs/{id}")).await;
    assert!(detail.body.contains(">ui<"), "{}", detail.body);
    app.stop().await;
}
