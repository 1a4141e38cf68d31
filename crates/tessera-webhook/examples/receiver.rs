//! A complete webhook receiver using only the standard library and this
//! crate: verify, de-duplicate on `webhook-id`, answer fast.
//!
//! ```sh
//! TESSERA_SIGNING_KEY=whsec_… MOSAIC_WEBHOOK_SECRET=… \
//!     cargo run -p tessera-webhook --example receiver -- 127.0.0.1:8787
//! ```
//!
//! `TESSERA_SIGNING_KEY` (from `GET /webhook_signing_key`; several keys,
//! comma-separated, during a rotation) checks the Standard Webhooks headers;
//! `MOSAIC_WEBHOOK_SECRET` checks `X-Mosaic-Signature`. Give at least one;
//! every one given is required to match.
//!
//! Tessera times an attempt out after 30 s and retries it, so a real
//! receiver acknowledges at once and does slow work elsewhere (a queue, a
//! thread); this one only prints a line.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_webhook::{
    MOSAIC_SIGNATURE_HEADER, Verifier, WEBHOOK_ID_HEADER, WebhookPayload, mosaic_signature_matches,
};

/// Largest body accepted (Tessera's payloads are a few KiB).
const MAX_BODY: usize = 5 * 1024 * 1024;
/// Most header lines read before giving up on a request.
const MAX_HEADERS: usize = 100;
/// How many recent `webhook-id`s are remembered for de-duplication.
const REMEMBERED_IDS: usize = 10_000;

struct Config {
    verifier: Option<Verifier>,
    mosaic_secret: Option<String>,
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        let verifier = var("TESSERA_SIGNING_KEY")
            .map(|keys| Verifier::with_keys(keys.split(',').map(str::trim)))
            .transpose()
            .map_err(|e| format!("TESSERA_SIGNING_KEY: {e}"))?;
        let mosaic_secret = var("MOSAIC_WEBHOOK_SECRET");
        if verifier.is_none() && mosaic_secret.is_none() {
            return Err("set TESSERA_SIGNING_KEY (whsec_…) and/or MOSAIC_WEBHOOK_SECRET".into());
        }
        Ok(Config {
            verifier,
            mosaic_secret,
        })
    }
}

/// One parsed HTTP request.
struct Request {
    method: String,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, PartialEq)]
struct Response {
    status: u16,
    body: String,
}

fn respond(status: u16, body: impl Into<String>) -> Response {
    Response {
        status,
        body: body.into(),
    }
}

/// The ids seen lately: retries and resends of an event reuse its id.
#[derive(Default)]
struct Dedupe {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Dedupe {
    /// Remembers `id`; false when it was already there.
    fn first_time(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

/// Everything but the socket: verify, parse, de-duplicate, process.
/// `process` is called once per new event.
fn handle(
    req: &Request,
    config: &Config,
    dedupe: &mut Dedupe,
    process: &mut dyn FnMut(&WebhookPayload),
) -> Response {
    if req.method != "POST" {
        return respond(405, "POST only");
    }
    if let Some(secret) = &config.mosaic_secret {
        let given = req.header(MOSAIC_SIGNATURE_HEADER).unwrap_or("");
        if !mosaic_signature_matches(secret, given) {
            return respond(401, "X-Mosaic-Signature does not match");
        }
    }
    let payload = match &config.verifier {
        Some(verifier) => match verifier.verify_and_parse(|n| req.header(n), &req.body) {
            Ok(payload) => payload,
            Err(tessera_webhook::Error::Verify(e)) => return respond(401, e.to_string()),
            Err(tessera_webhook::Error::Parse(e)) => return respond(400, e.to_string()),
        },
        None => match tessera_webhook::parse(&req.body) {
            Ok(payload) => payload,
            Err(e) => return respond(400, e.to_string()),
        },
    };
    // Verified ids only: an attacker cannot make us skip a real event.
    if let Some(id) = req.header(WEBHOOK_ID_HEADER)
        && !dedupe.first_time(id)
    {
        return respond(200, "duplicate, already processed");
    }
    process(&payload);
    respond(200, "ok")
}

fn describe(payload: &WebhookPayload) -> String {
    match payload {
        WebhookPayload::RunStarted(p) => format!("RUN_STARTED  run {}", p.run_id),
        WebhookPayload::RunFinished(p) => format!(
            "RUN_FINISHED run {} {:?}: {} output(s)",
            p.run_id,
            p.status,
            p.outputs.len()
        ),
        WebhookPayload::Test(p) => format!("TEST         {}", p.message),
    }
}

/// Reads one request; `Err` carries the response to send instead.
fn read_request(stream: &TcpStream) -> Result<Request, Response> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let bad = |what: &str| respond(400, what);
    reader
        .read_line(&mut line)
        .map_err(|_| bad("unreadable request"))?;
    let method = line.split_whitespace().next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|_| bad("unreadable headers"))?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(respond(431, "too many headers"));
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = match headers.iter().find(|(n, _)| n == "content-length") {
        Some((_, v)) => v.parse::<usize>().map_err(|_| bad("bad Content-Length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(respond(413, "body too large"));
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|_| bad("body shorter than Content-Length"))?;
    Ok(Request {
        method,
        headers,
        body,
    })
}

fn serve(mut stream: TcpStream, config: &Config, dedupe: &Mutex<Dedupe>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let response = match read_request(&stream) {
        Ok(req) => {
            let mut dedupe = dedupe.lock().unwrap_or_else(|e| e.into_inner());
            handle(&req, config, &mut dedupe, &mut |p| {
                println!("{}", describe(p))
            })
        }
        Err(response) => response,
    };
    if response.status != 200 {
        eprintln!("refused ({}): {}", response.status, response.body);
    }
    let _ = write!(
        stream,
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        response.status,
        if response.status == 200 {
            "OK"
        } else {
            "Refused"
        },
        response.body.len(),
        response.body
    );
}

fn main() {
    let config = match Config::from_env() {
        Ok(config) => Arc::new(config),
        Err(e) => {
            eprintln!("receiver: {e}");
            std::process::exit(2);
        }
    };
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8787".into());
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("receiver: cannot listen on {addr}: {e}");
        std::process::exit(2);
    });
    println!("listening on http://{addr}/ (any path)");
    let dedupe = Arc::new(Mutex::new(Dedupe::default()));
    for stream in listener.incoming().flatten() {
        let (config, dedupe) = (config.clone(), dedupe.clone());
        std::thread::spawn(move || serve(stream, &config, &dedupe));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_webhook::SigningKey;

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SECRET: &str = "my-webhook-secret";
    const BODY: &str = r#"{"flag":"TEST","run_id":"test","timestamp":"2026-12-04T10:00:00.000Z","user_id":"u","message":"Test webhook from Tessera","test_data":{"description":"d","status":"test"}}"#;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn config() -> Config {
        Config {
            verifier: Some(Verifier::new(KEY).unwrap()),
            mosaic_secret: Some(SECRET.into()),
        }
    }

    fn delivery(id: &str, timestamp: i64, body: &str, secret: &str) -> Request {
        let signature = SigningKey::parse(KEY)
            .unwrap()
            .sign(id, timestamp, body.as_bytes());
        Request {
            method: "POST".into(),
            headers: vec![
                ("webhook-id".into(), id.into()),
                ("webhook-timestamp".into(), timestamp.to_string()),
                ("webhook-signature".into(), signature),
                ("x-mosaic-signature".into(), secret.into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    /// The response and how many events were processed.
    fn run(req: &Request, dedupe: &mut Dedupe) -> (Response, usize) {
        let mut processed = 0;
        let response = handle(req, &config(), dedupe, &mut |_| processed += 1);
        (response, processed)
    }

    #[test]
    fn a_signed_delivery_is_processed_once_and_its_retry_acknowledged() {
        let mut dedupe = Dedupe::default();
        let req = delivery("msg_1", now(), BODY, SECRET);
        assert_eq!(run(&req, &mut dedupe), (respond(200, "ok"), 1));
        let (response, processed) = run(&req, &mut dedupe);
        assert_eq!((response.status, processed), (200, 0));
    }

    #[test]
    fn tampered_bodies_wrong_secrets_and_stale_timestamps_are_refused() {
        let mut dedupe = Dedupe::default();
        let mut tampered = delivery("msg_2", now(), BODY, SECRET);
        tampered.body.push(b' ');
        let wrong_secret = delivery("msg_3", now(), BODY, "not-the-secret");
        let stale = delivery("msg_4", now() - 3600, BODY, SECRET);
        for req in [tampered, wrong_secret, stale] {
            let (response, processed) = run(&req, &mut dedupe);
            assert_eq!((response.status, processed), (401, 0), "{response:?}");
        }
        // A refused delivery is not remembered: its genuine retry goes through.
        let retry = delivery("msg_2", now(), BODY, SECRET);
        assert_eq!(run(&retry, &mut dedupe).1, 1);
    }

    #[test]
    fn signed_nonsense_is_a_bad_request_and_other_methods_are_refused() {
        let mut dedupe = Dedupe::default();
        let req = delivery("msg_5", now(), r#"{"flag":"NOPE"}"#, SECRET);
        assert_eq!(run(&req, &mut dedupe).0.status, 400);
        let mut get = delivery("msg_6", now(), BODY, SECRET);
        get.method = "GET".into();
        assert_eq!(run(&get, &mut dedupe).0.status, 405);
    }

    #[test]
    fn the_id_memory_is_bounded() {
        let mut dedupe = Dedupe::default();
        for i in 0..=REMEMBERED_IDS {
            assert!(dedupe.first_time(&i.to_string()));
        }
        assert_eq!(dedupe.seen.len(), REMEMBERED_IDS);
        assert!(dedupe.first_time("0"), "the oldest id was forgotten");
        assert!(!dedupe.first_time(&REMEMBERED_IDS.to_string()));
    }
}
