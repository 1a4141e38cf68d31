//! A small W3C WebDriver client for browser tests: Debian's headless Chromium
//! driven through `chromedriver`, both on loopback. Install them with
//! `scripts/test-deps.sh` (apt packages `chromium chromium-driver`).
//!
//! Everything talks only to 127.0.0.1: chromedriver listens on a loopback
//! port, the browser gets flags that stop its background traffic, and no host
//! but `127.0.0.1` and `localhost` resolves inside the browser.
//!
//! The helpers panic with context (selector, current URL, where a failure
//! screenshot went); [`Browser::command`] and [`Browser::find_element`] return
//! [`WdError`] for tests that expect a WebDriver error.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::response::Html;
use axum::routing::{get, post};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long `find`, `wait_until` and `wait_for_text` wait by default.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const STARTUP: Duration = Duration::from_secs(30);
/// The key that marks a web element reference in the W3C protocol.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys for [`Element::send_keys`] (WebDriver's private-use code points).
pub mod keys {
    pub const ENTER: &str = "\u{E007}";
}

/// A failed WebDriver command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WdError {
    /// The driver answered with a W3C error (`error` is the code, e.g.
    /// `no such element`, `no such alert`, `unexpected alert open`).
    WebDriver {
        status: u16,
        error: String,
        message: String,
    },
    /// The request did not get an answer (driver gone, timeout, ...).
    Transport(String),
    /// The answer was not what the protocol promises.
    Protocol(String),
}

impl WdError {
    /// Whether this is the W3C error `code`.
    pub fn is(&self, code: &str) -> bool {
        matches!(self, WdError::WebDriver { error, .. } if error == code)
    }

    /// Errors that waiting will not cure: a bad selector, an open alert,
    /// a closed window or session, a dead driver.
    pub fn is_permanent(&self) -> bool {
        match self {
            WdError::WebDriver { error, .. } => matches!(
                error.as_str(),
                "invalid selector"
                    | "invalid argument"
                    | "unexpected alert open"
                    | "invalid session id"
                    | "no such window"
            ),
            WdError::Transport(_) | WdError::Protocol(_) => true,
        }
    }
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WdError::WebDriver {
                status,
                error,
                message,
            } => {
                write!(f, "webdriver error `{error}` (HTTP {status}): {message}")
            }
            WdError::Transport(m) => write!(f, "webdriver transport error: {m}"),
            WdError::Protocol(m) => write!(f, "webdriver protocol error: {m}"),
        }
    }
}

impl std::error::Error for WdError {}

/// Where browser tests put screenshots: `<target>/test-artifacts/webdriver`,
/// with `<target>` from `CARGO_TARGET_DIR` or the workspace's `target`.
pub fn artifacts_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = manifest
        .ancestors()
        .nth(2)
        .unwrap_or(&manifest)
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("test-artifacts").join("webdriver")
}

/// One WebDriver session: what elements need to send commands.
struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`
    driver: String,
    id: String,
}

impl Session {
    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let url = format!("{}/session/{}{path}", self.driver, self.id);
        send(&self.http, method, &url, body).await
    }

    async fn current_url(&self) -> String {
        match self.command(Method::GET, "/url", None).await {
            Ok(Value::String(url)) => url,
            Ok(other) => format!("<url: {other}>"),
            Err(e) => format!("<url unknown: {e}>"),
        }
    }

    /// Best effort: a screenshot and the page source under
    /// `artifacts_dir()/failures`, for a panic message.
    async fn dump_failure(&self, what: &str) -> String {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let slug: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let base = artifacts_dir()
            .join("failures")
            .join(format!("{slug}-{millis}"));
        let mut saved = Vec::new();
        if std::fs::create_dir_all(base.parent().unwrap()).is_err() {
            return String::new();
        }
        if let Ok(Value::String(png)) = self.command(Method::GET, "/screenshot", None).await
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(png)
            && std::fs::write(base.with_extension("png"), bytes).is_ok()
        {
            saved.push(base.with_extension("png").display().to_string());
        }
        if let Ok(Value::String(html)) = self.command(Method::GET, "/source", None).await
            && std::fs::write(base.with_extension("html"), html).is_ok()
        {
            saved.push(base.with_extension("html").display().to_string());
        }
        if saved.is_empty() {
            String::new()
        } else {
            format!("; saved {}", saved.join(" and "))
        }
    }

    /// `POST /element(s)` from the document or from `from`.
    async fn locate(&self, from: Option<&str>, css: &str, all: bool) -> Result<Value, WdError> {
        let scope = from.map(|id| format!("/element/{id}")).unwrap_or_default();
        let path = format!("{scope}/{}", if all { "elements" } else { "element" });
        let body = json!({"using": "css selector", "value": css});
        self.command(Method::POST, &path, Some(body)).await
    }

    async fn find_one(self: &Arc<Self>, from: Option<&str>, css: &str) -> Result<Element, WdError> {
        let value = self.locate(from, css, false).await?;
        Element::from_value(self, css, &value)
    }

    async fn find_all(self: &Arc<Self>, from: Option<&str>, css: &str) -> Vec<Element> {
        let value = match self.locate(from, css, true).await {
            Ok(v) => v,
            Err(e) => panic!("find_all({css:?}) at {}: {e}", self.current_url().await),
        };
        let Value::Array(items) = value else {
            panic!("find_all({css:?}): expected an array, got {value}");
        };
        items
            .iter()
            .map(|v| {
                Element::from_value(self, css, v)
                    .unwrap_or_else(|e| panic!("find_all({css:?}): {e}"))
            })
            .collect()
    }

    /// Polls until `css` matches, then returns the first match.
    async fn find_waiting(self: &Arc<Self>, from: Option<&str>, css: &str) -> Element {
        let started = Instant::now();
        loop {
            match self.find_one(from, css).await {
                Ok(el) => return el,
                Err(e) if !e.is_permanent() && started.elapsed() < WAIT => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => {
                    let dump = self.dump_failure(css).await;
                    panic!(
                        "find({css:?}) at {} failed after {:?}: {e}{dump}",
                        self.current_url().await,
                        started.elapsed()
                    );
                }
            }
        }
    }
}

/// `method url` with a JSON body; unwraps the W3C `{"value": ...}` envelope.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WdError> {
    let mut request = http.request(method, url);
    // POST commands without parameters still need an empty JSON object.
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| WdError::Transport(format!("{url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| WdError::Transport(format!("{url}: {e}")))?;
    let mut parsed: Value = serde_json::from_str(&text).map_err(|e| {
        WdError::Protocol(format!("{url}: HTTP {status}, not JSON ({e}): {text:.300}"))
    })?;
    let value = parsed
        .get_mut("value")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(WdError::WebDriver {
            status: status.as_u16(),
            error: error.to_owned(),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    if !status.is_success() {
        return Err(WdError::Protocol(format!(
            "{url}: HTTP {status} without an error: {text:.300}"
        )));
    }
    Ok(value)
}

/// A headless Chromium with its own chromedriver, profile and `$HOME`.
pub struct Browser {
    session: Arc<Session>,
    port: u16,
    driver: tokio::process::Child,
    /// Holds the profile, `$HOME` and `$TMPDIR` for the browser and
    /// chromedriver's log.
    /// Every browser process has this path on its command line.
    root: tempfile::TempDir,
    quit: bool,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session.
    pub async fn start() -> Browser {
        for binary in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: browser tests need Debian's `chromium` and `chromium-driver` \
                 packages; run scripts/test-deps.sh (or `sudo apt-get install chromium chromium-driver`)"
            );
        }
        let root = tempfile::Builder::new()
            .prefix("tessera-webdriver-")
            .tempdir()
            .unwrap();
        let home = root.path().join("home");
        let tmp = root.path().join("tmp");
        let profile = root.path().join("profile");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();

        // The port is free when we look; if something takes it before
        // chromedriver binds, chromedriver exits and we try another one.
        let mut attempt = 0;
        let (driver, port) = loop {
            attempt += 1;
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(root.path().join("chromedriver.log")).unwrap();
            let mut command = tokio::process::Command::new(CHROMEDRIVER);
            command
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // Chromium keeps crash reports and caches under $HOME and
                // sockets and scratch directories under $TMPDIR: all ours.
                .env("HOME", &home)
                .env("TMPDIR", &tmp)
                .env("XDG_CONFIG_HOME", home.join(".config"))
                .env("XDG_CACHE_HOME", home.join(".cache"))
                .kill_on_drop(true);
            for var in [
                "http_proxy",
                "https_proxy",
                "all_proxy",
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
            ] {
                command.env_remove(var);
            }
            let mut driver = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            match wait_ready(&http, port, &mut driver).await {
                Ok(()) => break (driver, port),
                Err(e) if attempt < 3 => {
                    eprintln!("chromedriver on port {port} did not come up ({e}); retrying");
                    let _ = driver.kill().await;
                }
                Err(e) => {
                    let _ = driver.kill().await;
                    panic!(
                        "chromedriver did not come up: {e}\n{}",
                        log_tail(root.path())
                    );
                }
            }
        };
        let driver_url = format!("http://127.0.0.1:{port}");

        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-proxy-server".to_owned(),
            // Only loopback names resolve (the rules apply to IP literals
            // too), so a stray request fails inside the browser instead of
            // leaving the machine.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
                .to_owned(),
            format!("--user-data-dir={}", profile.display()),
            "--window-size=1280,900".to_owned(),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                    // An alert stays open until the test handles it.
                    "unhandledPromptBehavior": "ignore",
                    "timeouts": {"implicit": 0, "pageLoad": 30_000, "script": 10_000},
                }
            }
        });
        let created = send(
            &http,
            Method::POST,
            &format!("{driver_url}/session"),
            Some(capabilities),
        )
        .await
        .unwrap_or_else(|e| {
            let log = log_tail(root.path());
            kill_processes_mentioning(root.path());
            panic!("cannot create a chromium session: {e}\n{log}")
        });
        let id = created
            .get("sessionId")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no sessionId in {created}"))
            .to_owned();
        Browser {
            session: Arc::new(Session {
                http,
                driver: driver_url,
                id,
            }),
            port,
            driver,
            root,
            quit: false,
        }
    }

    /// Any session command, e.g. `command(Method::GET, "/title", None)`;
    /// `path` is relative to `/session/{id}`.
    pub async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        self.session.command(method, path, body).await
    }

    async fn must(&self, what: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        match self.command(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("{what} at {}: {e}", self.session.current_url().await),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.must(
            &format!("goto({url:?})"),
            Method::POST,
            "/url",
            Some(json!({"url": url})),
        )
        .await;
    }

    pub async fn current_url(&self) -> String {
        string(self.must("current_url", Method::GET, "/url", None).await)
    }

    pub async fn title(&self) -> String {
        string(self.must("title", Method::GET, "/title", None).await)
    }

    pub async fn source(&self) -> String {
        string(self.must("source", Method::GET, "/source", None).await)
    }

    pub async fn back(&self) {
        self.must("back", Method::POST, "/back", Some(json!({})))
            .await;
    }

    pub async fn refresh(&self) {
        self.must("refresh", Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    /// The first element matching `css`, waiting up to [`WAIT`] for it.
    pub async fn find(&self, css: &str) -> Element {
        self.session.find_waiting(None, css).await
    }

    /// Every element matching `css` now (no waiting; may be empty).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.session.find_all(None, css).await
    }

    /// The first element matching `css` now, or `None` (no waiting).
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        match self.find_element(css).await {
            Ok(el) => Some(el),
            Err(e) if e.is("no such element") => None,
            Err(e) => panic!(
                "try_find({css:?}) at {}: {e}",
                self.session.current_url().await
            ),
        }
    }

    /// One lookup, no waiting, errors returned (`invalid selector`, ...).
    pub async fn find_element(&self, css: &str) -> Result<Element, WdError> {
        self.session.find_one(None, css).await
    }

    /// Polls `cond` until it is true; panics after [`WAIT`] naming `what`.
    pub async fn wait_until(&self, what: &str, mut cond: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond().await {
            if Instant::now() >= deadline {
                let dump = self.session.dump_failure(what).await;
                panic!(
                    "timed out after {WAIT:?} waiting until {what} at {}{dump}",
                    self.session.current_url().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for an element matching `css` whose text contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            seen.clear();
            let items = match self.session.locate(None, css, true).await {
                Ok(Value::Array(items)) => items,
                Ok(other) => panic!("wait_for_text({css:?}): expected an array, got {other}"),
                Err(e) if e.is_permanent() => panic!(
                    "wait_for_text({css:?}) at {}: {e}",
                    self.session.current_url().await
                ),
                Err(e) => {
                    seen.push(format!("<{e}>"));
                    Vec::new()
                }
            };
            for item in &items {
                let Ok(el) = Element::from_value(&self.session, css, item) else {
                    continue;
                };
                // The page may change under us (stale elements): retry.
                if let Ok(Value::String(text)) = el.command(Method::GET, "/text", None).await {
                    if text.contains(needle) {
                        return el;
                    }
                    seen.push(text);
                }
            }
            if Instant::now() >= deadline {
                let dump = self.session.dump_failure(css).await;
                panic!(
                    "timed out after {WAIT:?} waiting for {css:?} to contain {needle:?} at {}; \
                     matching elements had texts {seen:?}{dump}",
                    self.session.current_url().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` as a function body (`return ...`; arguments in
    /// `arguments`); [`Element::as_arg`] passes elements.
    pub async fn execute(&self, script: &str, args: &[Value]) -> Value {
        let body = json!({"script": script, "args": args});
        self.must(
            &format!("execute({script:?})"),
            Method::POST,
            "/execute/sync",
            Some(body),
        )
        .await
    }

    /// Saves a PNG of the viewport, creating parent directories.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = string(
            self.must("screenshot", Method::GET, "/screenshot", None)
                .await,
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap_or_else(|e| panic!("screenshot: not base64: {e}"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The open alert/confirm/prompt's text, or `None` when there is none.
    pub async fn alert_text(&self) -> Option<String> {
        match self.command(Method::GET, "/alert/text", None).await {
            Ok(v) => Some(string(v)),
            Err(e) if e.is("no such alert") => None,
            Err(e) => panic!("alert_text: {e}"),
        }
    }

    /// Presses OK on the open alert; panics if there is none.
    pub async fn accept_alert(&self) {
        if let Err(e) = self
            .command(Method::POST, "/alert/accept", Some(json!({})))
            .await
        {
            panic!("accept_alert: {e}");
        }
    }

    /// Presses Cancel (or closes) the open alert; panics if there is none.
    pub async fn dismiss_alert(&self) {
        if let Err(e) = self
            .command(Method::POST, "/alert/dismiss", Some(json!({})))
            .await
        {
            panic!("dismiss_alert: {e}");
        }
    }

    /// Sets the outer window size in CSS pixels.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        let body = json!({"width": width, "height": height});
        self.must("set_window_size", Method::POST, "/window/rect", Some(body))
            .await;
    }

    /// The cookies visible to the current page, as W3C cookie objects
    /// (`name`, `value`, `path`, `domain`, `httpOnly`, ...).
    pub async fn cookies(&self) -> Vec<Value> {
        match self.must("cookies", Method::GET, "/cookie", None).await {
            Value::Array(items) => items,
            other => panic!("cookies: expected an array, got {other}"),
        }
    }

    /// Deletes every cookie visible to the current page.
    pub async fn delete_cookies(&self) {
        self.must("delete_cookies", Method::DELETE, "/cookie", None)
            .await;
    }

    /// Ends the session (Chromium exits), stops chromedriver and makes sure
    /// no process of this browser is left.
    pub async fn quit(mut self) {
        if let Err(e) = self.command(Method::DELETE, "", None).await {
            eprintln!("webdriver: deleting the session failed: {e}");
        }
        self.quit = true;
        let _ = self.driver.kill().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_mentioning(self.root.path()).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        kill_processes_mentioning(self.root.path());
    }

    /// The temporary directory holding the profile; every process of this
    /// browser has it on its command line.
    fn root(&self) -> PathBuf {
        self.root.path().to_path_buf()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.quit {
            // Drop cannot await: close the session with a plain blocking
            // request so Chromium shuts down cleanly, then make sure.
            delete_session_blocking(self.port, &self.session.id);
        }
        let _ = self.driver.start_kill();
        kill_processes_mentioning(self.root.path());
    }
}

/// A DOM element found in a [`Browser`]. Commands on it panic with its
/// selector; a stale element (the page changed) panics too.
#[derive(Clone)]
pub struct Element {
    session: Arc<Session>,
    id: String,
    css: String,
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Element({:?} {})", self.css, self.id)
    }
}

impl Element {
    fn from_value(session: &Arc<Session>, css: &str, value: &Value) -> Result<Element, WdError> {
        let id = value
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .ok_or_else(|| WdError::Protocol(format!("not an element reference: {value}")))?;
        Ok(Element {
            session: session.clone(),
            id: id.to_owned(),
            css: css.to_owned(),
        })
    }

    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let path = format!("/element/{}{path}", self.id);
        self.session.command(method, &path, body).await
    }

    async fn must(&self, what: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        match self.command(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!(
                "{what} on {:?} at {}: {e}",
                self.css,
                self.session.current_url().await
            ),
        }
    }

    /// The reference to pass in [`Browser::execute`] arguments.
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    pub async fn click(&self) {
        self.must("click", Method::POST, "/click", Some(json!({})))
            .await;
    }

    /// Types `text` (see [`keys`] for Enter and friends).
    pub async fn send_keys(&self, text: &str) {
        self.must(
            "send_keys",
            Method::POST,
            "/value",
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn clear(&self) {
        self.must("clear", Method::POST, "/clear", Some(json!({})))
            .await;
    }

    /// The rendered text (`innerText`-like; hidden text is left out).
    pub async fn text(&self) -> String {
        string(self.must("text", Method::GET, "/text", None).await)
    }

    /// The HTML attribute `name`, `None` when absent.
    pub async fn attr(&self, name: &str) -> Option<String> {
        match self
            .must("attr", Method::GET, &format!("/attribute/{name}"), None)
            .await
        {
            Value::Null => None,
            v => Some(string(v)),
        }
    }

    /// The DOM property `name` (e.g. `value`, `checked`), as JSON.
    pub async fn prop(&self, name: &str) -> Value {
        self.must("prop", Method::GET, &format!("/property/{name}"), None)
            .await
    }

    /// The first descendant matching `css`, waiting up to [`WAIT`].
    pub async fn find(&self, css: &str) -> Element {
        self.session.find_waiting(Some(&self.id), css).await
    }

    /// Every descendant matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.session.find_all(Some(&self.id), css).await
    }
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("expected a string from webdriver, got {other}"),
    }
}

/// Polls chromedriver's `/status` until it is ready, it exits, or time runs out.
async fn wait_ready(
    http: &reqwest::Client,
    port: u16,
    driver: &mut tokio::process::Child,
) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/status");
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited with {status}"));
        }
        let probe = http.get(&url).timeout(Duration::from_secs(2)).send().await;
        if let Ok(response) = probe
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == Value::Bool(true)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{url} not ready after {STARTUP:?}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn log_tail(root: &Path) -> String {
    let log = std::fs::read_to_string(root.join("chromedriver.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("chromedriver log (last lines):\n{tail}")
}

/// `DELETE /session/{id}` over a plain socket, for `Drop`.
fn delete_session_blocking(port: u16, id: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // chromedriver answers once Chromium is gone; it may keep the
    // connection open, so the first bytes of the answer are enough.
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read(&mut [0; 512]);
    }
}

/// Processes whose command line contains `path` (our profile or `$HOME`).
fn processes_mentioning(path: &Path) -> Vec<u32> {
    let needle = path.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| String::from_utf8_lossy(&raw).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

fn kill_processes_mentioning(path: &Path) {
    let pids = processes_mentioning(path);
    if pids.is_empty() {
        return;
    }
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// The client's own test: a loopback page with a form and an alert.

const FORM_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>WebDriver smoke</title></head>
<body>
  <h1 id="heading">Smoke</h1>
  <form id="form" method="post" action="/echo">
    <input id="name" name="name" type="text" value="prefilled">
    <button id="send" type="submit">Send</button>
  </form>
  <button id="alert" type="button" onclick="alert('hi')">Alert</button>
</body></html>"#;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn echo(body: Bytes) -> Html<String> {
    let name = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Echo</title></head>
<body><p id="echo">You said: {}</p><a id="home" href="/">back</a></body></html>"#,
        escape(&name)
    ))
}

async fn serve() -> String {
    let router = Router::new()
        .route("/", get(|| async { Html(FORM_PAGE) }))
        .route("/echo", post(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn webdriver_drives_headless_chromium() {
    let site = serve().await;
    let started = Instant::now();
    let b = Browser::start().await;
    eprintln!("browser ready in {:?}", started.elapsed());

    b.goto(&format!("{site}/")).await;
    assert_eq!(b.title().await, "WebDriver smoke");
    assert_eq!(b.current_url().await, format!("{site}/"));
    assert!(b.source().await.contains(r#"id="heading""#));
    assert_eq!(b.find("#heading").await.text().await, "Smoke");
    assert_eq!(b.find_all("button").await.len(), 2);
    assert!(b.try_find("#missing").await.is_none());
    let err = b.find_element("p[").await.unwrap_err();
    assert!(err.is("invalid selector") && err.is_permanent(), "{err}");
    let err = b.find_element("#missing").await.unwrap_err();
    assert!(err.is("no such element") && !err.is_permanent(), "{err}");

    // Fill and submit the form by clicking.
    let form = b.find("#form").await;
    let input = form.find("input[name=name]").await;
    assert_eq!(form.find_all("button").await.len(), 1);
    assert_eq!(input.attr("name").await.as_deref(), Some("name"));
    assert_eq!(input.attr("data-missing").await, None);
    assert_eq!(input.prop("value").await, json!("prefilled"));
    input.clear().await;
    input.send_keys("héllo <world> & co").await;
    assert_eq!(input.prop("value").await, json!("héllo <world> & co"));
    b.find("#send").await.click().await;
    let echoed = b.wait_for_text("#echo", "héllo").await;
    assert_eq!(echoed.text().await, "You said: héllo <world> & co");
    assert_eq!(b.title().await, "Echo");
    assert_eq!(b.current_url().await, format!("{site}/echo"));

    // Back to the form; submit with Enter this time.
    b.back().await;
    b.wait_until("the form page is back", async || {
        b.title().await == "WebDriver smoke"
    })
    .await;
    let input = b.find("#name").await;
    input.clear().await;
    input.send_keys(&format!("second{}", keys::ENTER)).await;
    b.wait_for_text("#echo", "second").await;

    // Scripts, elements as arguments, window size, cookies.
    b.goto(&format!("{site}/")).await;
    b.execute("document.title = 'changed'", &[]).await;
    b.refresh().await;
    assert_eq!(b.title().await, "WebDriver smoke");
    let heading = b.find("#heading").await;
    let out = b
        .execute(
            "return [document.title, arguments[0] + 1, arguments[1].id]",
            &[json!(41), heading.as_arg()],
        )
        .await;
    assert_eq!(out, json!(["WebDriver smoke", 42, "heading"]));
    b.set_window_size(800, 600).await;
    assert_eq!(b.execute("return window.outerWidth", &[]).await, json!(800));
    b.execute("document.cookie = 'flavour=plain; path=/'", &[])
        .await;
    let cookies = b.cookies().await;
    assert!(
        cookies
            .iter()
            .any(|c| c["name"] == "flavour" && c["value"] == "plain"),
        "{cookies:?}"
    );
    b.delete_cookies().await;
    assert!(b.cookies().await.is_empty());
    b.set_window_size(1280, 900).await;

    // Screenshot.
    let png = artifacts_dir().join("smoke.png");
    let _ = std::fs::remove_file(&png);
    b.screenshot(&png).await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {}",
        png.display()
    );

    // An alert stays open until handled, and blocks other commands.
    assert_eq!(b.alert_text().await, None);
    b.find("#alert").await.click().await;
    b.wait_until("the alert opens", async || b.alert_text().await.is_some())
        .await;
    assert_eq!(b.alert_text().await.as_deref(), Some("hi"));
    let blocked = b.command(Method::GET, "/title", None).await.unwrap_err();
    assert!(blocked.is("unexpected alert open"), "{blocked}");
    b.accept_alert().await;
    assert_eq!(b.alert_text().await, None);
    b.find("#alert").await.click().await;
    b.wait_until("the alert opens again", async || {
        b.alert_text().await.is_some()
    })
    .await;
    b.dismiss_alert().await;
    assert_eq!(b.alert_text().await, None);
    b.goto(&format!("{site}/echo-less")).await; // a 404 page, no alerts
    assert_eq!(b.alert_text().await, None);

    let root = b.root();
    assert!(
        !processes_mentioning(&root).is_empty(),
        "chromium should be running"
    );
    b.quit().await;
    assert_eq!(
        processes_mentioning(&root),
        Vec::<u32>::new(),
        "browser processes left behind"
    );
    eprintln!("whole test took {:?}", started.elapsed());
}
