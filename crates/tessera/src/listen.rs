//! `tessera listen`: a local webhook receiver for developers. It prints each
//! webhook it gets and whether its signatures verify, then answers with a
//! chosen status.

use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::signing::{
    DEFAULT_TOLERANCE_SECS, SigningKey, mosaic_signature_matches, verify_standard,
};

/// Options of `tessera listen` (flattened into the CLI by `main.rs`).
#[derive(Clone, clap::Args)]
pub struct ListenArgs {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Webhook secret expected verbatim in `X-Mosaic-Signature`.
    #[arg(long, env = "TESSERA_LISTEN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Standard Webhooks signing key (`whsec_…`) to verify `webhook-signature`.
    #[arg(long, env = "TESSERA_LISTEN_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// HTTP status to answer every webhook with.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..600))]
    pub status: u16,
}

/// Where the receiver prints; stdout in production, a buffer in tests.
pub type Output = Arc<Mutex<dyn Write + Send>>;

/// Runs the receiver until `shutdown` completes, printing to stdout.
pub async fn run(
    args: ListenArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (_, server) = bind(args, shutdown).await?;
    server.await
}

/// Binds the receiver, prints the listening line to stdout and returns the
/// bound address with the future that serves until `shutdown`.
pub async fn bind(
    args: ListenArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, impl Future<Output = anyhow::Result<()>> + Send)> {
    bind_with_output(args, shutdown, Arc::new(Mutex::new(std::io::stdout()))).await
}

/// [`bind`] printing to `out`.
pub async fn bind_with_output(
    args: ListenArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    out: Output,
) -> anyhow::Result<(SocketAddr, impl Future<Output = anyhow::Result<()>> + Send)> {
    let receiver = Receiver::new(&args, out)?;
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    receiver.print(&format!("Listening for webhooks on http://{addr}/\n"));
    let router = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::new(receiver));
    let server = async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the webhook receiver failed")
    };
    Ok((addr, server))
}

/// What the handler needs: the expected secrets and where to print.
struct Receiver {
    secret: Option<String>,
    signing_key: Option<SigningKey>,
    status: StatusCode,
    out: Output,
}

impl Receiver {
    fn new(args: &ListenArgs, out: Output) -> anyhow::Result<Self> {
        let signing_key = args
            .signing_key
            .as_deref()
            .map(SigningKey::parse)
            .transpose()
            .context("--signing-key is not a whsec_ key")?;
        Ok(Self {
            secret: args.secret.clone(),
            signing_key,
            status: StatusCode::from_u16(args.status).context("--status is not an HTTP status")?,
            out,
        })
    }

    /// Writes and flushes at once: the output is usually piped.
    fn print(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A closed stdout must not take the receiver down.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    fn mosaic_verdict(&self, headers: &HeaderMap) -> &'static str {
        let Some(expected) = &self.secret else {
            return "not checked (no --secret)";
        };
        match header(headers, "x-mosaic-signature") {
            None => "missing",
            Some(given) if mosaic_signature_matches(expected, given) => "valid",
            Some(_) => "INVALID",
        }
    }

    fn standard_verdict(&self, headers: &HeaderMap, body: &[u8]) -> String {
        let Some(key) = &self.signing_key else {
            return "not checked (no --signing-key)".to_owned();
        };
        let (Some(id), Some(ts), Some(sig)) = (
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
        ) else {
            return "missing".to_owned();
        };
        let now = chrono::Utc::now().timestamp();
        let keys = std::slice::from_ref(key);
        match verify_standard(keys, id, ts, sig, body, now, DEFAULT_TOLERANCE_SECS) {
            Ok(()) => "valid".to_owned(),
            Err(err) => format!("INVALID ({err})"),
        }
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        let hint = "tessera listen: POST webhooks to any path\n";
        return (StatusCode::METHOD_NOT_ALLOWED, hint).into_response();
    }
    receiver.print(&render(&receiver, &uri, &headers, &body));
    (receiver.status, Json(json!({"ok": true}))).into_response()
}

/// One block per webhook: when, what, the signature verdicts and the body.
fn render(receiver: &Receiver, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let pretty = match &parsed {
        Some(value) => serde_json::to_string_pretty(value).unwrap_or_default(),
        None => format!("(body is not JSON)\n{}", String::from_utf8_lossy(body)),
    };
    let time = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
    format!(
        "\n── {time}  POST {path}\n\
         flag:               {flag}\n\
         run_id:             {run_id}\n\
         status:             {status}\n\
         webhook-id:         {id}\n\
         X-Mosaic-Signature: {mosaic}\n\
         webhook-signature:  {standard}\n\
         {pretty}\n",
        path = uri.path(),
        flag = field("flag"),
        run_id = field("run_id"),
        status = field("status"),
        id = header(headers, "webhook-id").unwrap_or("-"),
        mosaic = receiver.mosaic_verdict(headers),
        standard = receiver.standard_verdict(headers, body),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    const SECRET: &str = "listen-test-secret";

    fn args(status: u16, key: &SigningKey) -> ListenArgs {
        ListenArgs {
            port: 0,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            secret: Some(SECRET.to_owned()),
            signing_key: Some(key.as_whsec()),
            status,
        }
    }

    /// A running receiver: its address, its output and its stop switch.
    struct Running {
        addr: SocketAddr,
        output: Arc<Mutex<Vec<u8>>>,
        stop: oneshot::Sender<()>,
        server: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    impl Running {
        async fn start(args: ListenArgs) -> Self {
            let output = Arc::new(Mutex::new(Vec::new()));
            let (stop, stopped) = oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let (addr, server) = bind_with_output(args, shutdown, output.clone())
                .await
                .expect("binds");
            let server = tokio::spawn(server);
            Self {
                addr,
                output,
                stop,
                server,
            }
        }

        fn printed(&self) -> String {
            let bytes = self.output.lock().expect("not poisoned").clone();
            String::from_utf8(bytes).expect("utf-8 output")
        }

        async fn stop(self) {
            let _ = self.stop.send(());
            self.server.await.expect("joins").expect("serves cleanly");
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
    }

    fn payload() -> Vec<u8> {
        br#"{"flag":"RUN_FINISHED","agent_id":"a","run_id":"0f6e2c1a-8b3d-4e59-a7c2-6d1e9b0f4a33","status":"completed","inputs":[],"outputs":[]}"#.to_vec()
    }

    async fn post(
        running: &Running,
        key: &SigningKey,
        secret: &str,
        body: Vec<u8>,
        signed_body: &[u8],
    ) -> reqwest::Response {
        let ts = chrono::Utc::now().timestamp();
        client()
            .post(format!("http://{}/hooks/tessera", running.addr))
            .header("content-type", "application/json")
            .header("x-mosaic-signature", secret)
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", key.sign("msg_1", ts, signed_body))
            .body(body)
            .send()
            .await
            .expect("sent")
    }

    #[tokio::test]
    async fn a_signed_webhook_is_answered_and_printed_with_both_signatures_valid() {
        let key = crate::domain::signing::generate_signing_key();
        let running = Running::start(args(200, &key)).await;
        let resp = post(&running, &key, SECRET, payload(), &payload()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.json::<Value>().await.expect("json"),
            json!({"ok": true})
        );
        let printed = running.printed();
        let port = running.addr.port();
        assert!(printed.contains(&format!(
            "Listening for webhooks on http://127.0.0.1:{port}/"
        )));
        assert!(
            printed.contains("flag:               RUN_FINISHED"),
            "{printed}"
        );
        assert!(printed.contains("run_id:             0f6e2c1a-8b3d-4e59-a7c2-6d1e9b0f4a33"));
        assert!(printed.contains("webhook-id:         msg_1"));
        assert!(printed.contains("X-Mosaic-Signature: valid"));
        assert!(printed.contains("webhook-signature:  valid"));
        assert!(
            printed.contains("\"status\": \"completed\""),
            "pretty-printed body"
        );
        assert!(!printed.contains(SECRET), "the secret is never printed");
        running.stop().await;
    }

    #[tokio::test]
    async fn wrong_secrets_and_tampered_bodies_are_reported_invalid() {
        let key = crate::domain::signing::generate_signing_key();
        let running = Running::start(args(503, &key)).await;
        let resp = post(&running, &key, "guess", payload(), b"{}").await;
        assert_eq!(
            resp.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "answers --status"
        );
        let printed = running.printed();
        assert!(printed.contains("X-Mosaic-Signature: INVALID"), "{printed}");
        assert!(printed.contains("webhook-signature:  INVALID (no signature matches)"));
        running.stop().await;
    }

    #[tokio::test]
    async fn unsigned_webhooks_and_other_methods_are_handled() {
        let running = Running::start(ListenArgs {
            secret: None,
            signing_key: None,
            ..args(200, &crate::domain::signing::generate_signing_key())
        })
        .await;
        let url = format!("http://{}/", running.addr);
        let resp = client()
            .post(&url)
            .body("not json")
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = client().get(&url).send().await.expect("sent");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        let printed = running.printed();
        assert!(
            printed.contains("X-Mosaic-Signature: not checked"),
            "{printed}"
        );
        assert!(printed.contains("webhook-signature:  not checked"));
        assert!(printed.contains("(body is not JSON)\nnot json"));
        running.stop().await;
    }

    #[tokio::test]
    async fn a_malformed_signing_key_is_refused_without_echoing_it() {
        let bad = ListenArgs {
            signing_key: Some("whsec_oops-not-base64".to_owned()),
            ..args(200, &crate::domain::signing::generate_signing_key())
        };
        let sink: Output = Arc::new(Mutex::new(Vec::new()));
        let err = match bind_with_output(bad, async {}, sink).await {
            Ok(_) => panic!("a bad key must be refused"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains("--signing-key"), "{err}");
        assert!(!err.contains("oops"), "{err}");
    }
}
