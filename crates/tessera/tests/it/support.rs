//! Test support: a spawned Tessera on port 0, a recording webhook receiver,
//! and a file server for input videos. Everything listens on 127.0.0.1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::Value;
use tessera::app::RunningApp;
use tessera::config::{Config, Layer};
use tokio::sync::Notify;

pub const API_KEY: &str = "mk_testkey0123456789abcdefghijklmnop";

/// A running Tessera and a client that talks to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    app: Option<RunningApp>,
}

/// With `TESSERA_TEST_DATABASE_URL` set, the suite runs on PostgreSQL: each
/// data directory gets a schema of its own (remembered in the directory, so a
/// restart on it finds its data again). `None` means SQLite in the directory.
pub fn database_url(data_dir: &std::path::Path) -> Option<String> {
    let url = std::env::var("TESSERA_TEST_DATABASE_URL").ok()?;
    let marker = data_dir.join("postgres-schema");
    let schema = match std::fs::read_to_string(&marker) {
        Ok(schema) => schema,
        Err(_) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            // A synchronous client: keep it off the async runtime's threads.
            let (u, s) = (url.clone(), schema.clone());
            std::thread::spawn(move || tessera::store::postgres::create_schema(&u, &s))
                .join()
                .unwrap()
                .expect("the test schema is created");
            std::fs::write(&marker, &schema).unwrap();
            schema
        }
    };
    Some(tessera::store::postgres::url_with_schema(&url, &schema))
}

/// With `TESSERA_TEST_S3_BUCKET` set (the PostgreSQL pass of `make test`
/// starts a local S3 server, scripts/s3.sh, and sets the standard AWS
/// variables), an `s3://` location under a fresh prefix of that bucket.
/// `None` means there is no S3 server here, a failure when
/// `TESSERA_REQUIRE_S3` says there must be.
pub fn s3_location() -> Option<String> {
    match std::env::var("TESSERA_TEST_S3_BUCKET") {
        Ok(bucket) => Some(format!("s3://{bucket}/t-{}", uuid::Uuid::new_v4().simple())),
        Err(_) if std::env::var_os("TESSERA_REQUIRE_S3").is_some() => {
            panic!("TESSERA_REQUIRE_S3 is set but TESSERA_TEST_S3_BUCKET is not")
        }
        Err(_) => None,
    }
}

/// Rows in `table` of the app's database: the tests' only peek behind the API.
pub fn count_rows(data_dir: &std::path::Path, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match database_url(data_dir) {
        Some(url) => std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.query_one(&sql, &[]).unwrap().get::<_, i64>(0)
        })
        .join()
        .unwrap(),
        None => rusqlite::Connection::open(data_dir.join("tessera.db"))
            .unwrap()
            .query_row(&sql, [], |r| r.get(0))
            .unwrap(),
    }
}

/// Settings a test may change before the app starts.
pub fn test_layer(data_dir: &std::path::Path) -> Layer {
    Layer {
        database_url: database_url(data_dir),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.to_path_buf()),
        bootstrap_api_key: Some(API_KEY.into()),
        allow_private_targets: Some("127.0.0.0/8,::1/128".into()),
        webhook_timeout_ms: Some(5_000),
        webhook_backoff_base_ms: Some(50),
        webhook_backoff_factor: Some(2.0),
        delivery_lease_margin_ms: Some(2_000),
        poll_interval_ms: Some(50),
        ffmpeg_jobs: Some(2),
        ..Layer::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Layer)) -> TestApp {
        Self::start(tempfile::tempdir().unwrap(), tweak).await
    }

    /// Start on an existing data directory (a restart).
    pub async fn spawn_in(data_dir: tempfile::TempDir) -> TestApp {
        Self::start(data_dir, |_| {}).await
    }

    async fn start(data_dir: tempfile::TempDir, tweak: impl FnOnce(&mut Layer)) -> TestApp {
        let mut layer = test_layer(data_dir.path());
        tweak(&mut layer);
        let config = Config::resolve(layer, None).unwrap();
        let app = tessera::app::start(config).await.unwrap();
        TestApp {
            addr: app.addr,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            data_dir,
            app: Some(app),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The running app's store (for setting up a second user, say).
    pub fn store(&self) -> tessera::store::DynStore {
        self.app.as_ref().expect("running").store.clone()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(API_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url(path))
            .bearer_auth(API_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }

    /// Create an agent and return its id.
    pub async fn create_agent(&self, body: &Value) -> String {
        let (status, agent) = self.post("/agent/create", body).await;
        assert_eq!(status, StatusCode::OK, "{agent}");
        agent["id"].as_str().unwrap().to_owned()
    }

    /// Poll a run until it reaches a final status.
    pub async fn wait_for_run(&self, run_id: &str, deadline: Duration) -> Value {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let (status, run) = self.get(&format!("/agent_run/{run_id}")).await;
            assert_eq!(status, StatusCode::OK, "{run}");
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "run {run_id} did not finish in time: {run}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }

    /// Stop the app but keep its data directory for a restart.
    pub async fn stop_and_keep_data(mut self) -> tempfile::TempDir {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        self.data_dir
    }
}

pub async fn json_of(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct ReceiverState {
    seen: Mutex<Vec<Received>>,
    changed: Notify,
    status: Mutex<u16>,
    /// Statuses to answer first, in order, before falling back to `status`.
    script: Mutex<std::collections::VecDeque<u16>>,
}

/// A webhook receiver on loopback that records every POST.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState {
            status: Mutex::new(200),
            ..ReceiverState::default()
        });
        let router = Router::new()
            .route("/{*path}", post(record))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        *self.state.status.lock().unwrap() = status;
    }

    /// Answer the next requests with these statuses, then as before.
    pub fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Wait until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let changed = self.state.changed.notified();
            let seen = self.received();
            if seen.len() >= n {
                return seen;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                panic!(
                    "expected {n} webhooks, got {}: {:?}",
                    seen.len(),
                    seen.iter().map(|r| r.json()).collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let scripted = state.script.lock().unwrap().pop_front();
    let status = scripted.unwrap_or(*state.status.lock().unwrap());
    state.seen.lock().unwrap().push(Received {
        headers,
        body,
        status,
    });
    state.changed.notify_waiters();
    StatusCode::from_u16(status).unwrap()
}

/// Serves `fixtures_dir()` at `/videos/{name}` plus hostile inputs, and
/// `/late/{name}` which answers 404 until `open_late()` is called.
pub struct FileServer {
    pub addr: SocketAddr,
    late_open: Arc<std::sync::atomic::AtomicBool>,
}

/// A minimal valid 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

impl FileServer {
    pub async fn start() -> FileServer {
        async fn video(
            axum::extract::Path(name): axum::extract::Path<String>,
        ) -> Result<Vec<u8>, StatusCode> {
            std::fs::read(fixtures_dir().join(name)).map_err(|_| StatusCode::NOT_FOUND)
        }
        async fn truncated() -> Vec<u8> {
            let mut bytes = std::fs::read(fixtures_dir().join("bigbuckbunny.mp4")).unwrap();
            bytes.truncate(bytes.len() / 3);
            bytes
        }
        async fn endless() -> axum::body::Body {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let stream = futures_util::stream::repeat(chunk).map(Ok::<_, std::io::Error>);
            axum::body::Body::from_stream(stream)
        }
        let late_open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = late_open.clone();
        let late = move |axum::extract::Path(name): axum::extract::Path<String>| {
            let open = gate.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if !open {
                    return Err(StatusCode::NOT_FOUND);
                }
                video(axum::extract::Path(name)).await
            }
        };
        let router = Router::new()
            .route("/videos/{name}", get(video))
            .route("/late/{name}", get(late))
            .route("/page.html", get(|| async { axum::response::Html("<html><body>not a video</body></html>") }))
            .route("/image.png", get(|| async { ([("content-type", "image/png")], PNG) }))
            .route("/truncated.mp4", get(truncated))
            .route("/endless.mp4", get(endless))
            .route(
                "/playlist.m3u8",
                get(|| async { "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n" }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FileServer { addr, late_open }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// From now on `/late/{name}` serves the fixture.
    pub fn open_late(&self) {
        self.late_open
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The sample videos: `bigbuckbunny.mp4` (1280×720 H.264/AAC, 5.3 s) and
/// `bikes.mp4` (640×272 H.264, no audio, 10 s). The shared fixtures beside the
/// repository when present; otherwise look-alikes generated once with ffmpeg,
/// so the suite also runs on a lone clone.
pub fn fixtures_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shared =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/video");
        if shared.join("bigbuckbunny.mp4").exists() && shared.join("bikes.mp4").exists() {
            return shared;
        }
        let dir = std::env::temp_dir().join(format!("tessera-fixtures-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        generate(
            &dir.join("bigbuckbunny.mp4"),
            "testsrc2=size=1280x720:rate=25",
            true,
            "5.312",
        );
        generate(
            &dir.join("bikes.mp4"),
            "testsrc=size=640x272:rate=25",
            false,
            "10",
        );
        dir
    })
    .clone()
}

fn generate(path: &std::path::Path, video: &str, audio: bool, seconds: &str) {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", video]);
    if audio {
        cmd.args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-c:a",
            "aac",
        ]);
    }
    let out = cmd
        .args([
            "-t", seconds, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .arg(path)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe a file: (duration seconds, width, height, codec names).
/// The container duration in seconds from [`ffprobe`]'s answer.
pub fn duration(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn ffprobe(path: &std::path::Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A simple agent: input → trim → resize → render.
pub fn trim_agent(start_ms: u64, end_ms: u64, width: u32) -> Value {
    serde_json::json!({
        "name": "trim and shrink",
        "nodes": [
            {"id": "in", "type": "video_input", "params": {}},
            {"id": "cut", "type": "trim", "params": {"start_ms": start_ms, "end_ms": end_ms}},
            {"id": "small", "type": "resize", "params": {"width": width}},
            {"id": "out", "type": "render", "params": {}}
        ],
        "connections": [
            {"source": "in", "target": "cut"},
            {"source": "cut", "target": "small"},
            {"source": "small", "target": "out"}
        ]
    })
}
