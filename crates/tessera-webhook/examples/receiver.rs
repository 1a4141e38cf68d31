//! A complete webhook receiver using only the standard library and this
//! crate: verify, parse, de-duplicate on `webhook-id`, answer fast.
//!
//! ```sh
//! TESSERA_SIGNING_KEY=whsec_… MOSAIC_WEBHOOK_SECRET=… \
//!     cargo run -p tessera-webhook --example receiver -- 127.0.0.1:8787
//! ```
//!
//! `TESSERA_SIGNING_KEY` (from `GET /webhook_signing_key`; several keys,
//! comma-separated, during a rotation) checks the Standard Webhooks headers;
//! `MOSAIC_WEBHOOK_SECRET` checks `X-Mosaic-Signature`. Give at least one;
//! every one given must match. They come from the environment, not the
//! command line, so they do not show up in `ps`.
//!
//! The HTTP side is deliberately minimal (one request per connection, bodies
//! framed by `Content-Length`, which is what Tessera sends); put a real
//! receiver behind your usual HTTP server and keep only [`handle`]'s logic.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_webhook::{
    MOSAIC_SIGNATURE_HEADER, SigningKey, Verifier, WEBHOOK_ID_HEADER, WebhookPayload,
    mosaic_signature_matches,
};

const DEFAULT_ADDR: &str = "127.0.0.1:8787";
/// Largest body accepted (Tessera's payloads are a few KiB).
const MAX_BODY: usize = 5 * 1024 * 1024;
/// Largest request line plus headers accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How many recent `webhook-id`s are remembered for de-duplication.
const REMEMBERED_IDS: usize = 10_000;

const USAGE: &str = "\
usage: receiver [ADDRESS]          (default 127.0.0.1:8787)
environment (at least one of them):
  TESSERA_SIGNING_KEY    whsec_… key from GET /webhook_signing_key
                         (comma-separated old,new during a key rotation)
  MOSAIC_WEBHOOK_SECRET  the webhook secret Tessera sends as X-Mosaic-Signature";

/// What every delivery must prove.
struct Config {
    /// Standard Webhooks keys (`webhook-signature`), when configured.
    verifier: Option<Verifier>,
    /// The plaintext `X-Mosaic-Signature` secret, when configured.
    mosaic_secret: Option<String>,
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let var = |name| std::env::var(name).ok();
        Config::new(
            var("TESSERA_SIGNING_KEY").as_deref(),
            var("MOSAIC_WEBHOOK_SECRET").as_deref(),
        )
    }

    /// Error messages name the setting, never its value.
    fn new(signing_keys: Option<&str>, mosaic_secret: Option<&str>) -> Result<Config, String> {
        let keys: Vec<&str> = signing_keys
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        // Parsed one by one first so that the message can say which key is bad.
        for (i, key) in keys.iter().enumerate() {
            SigningKey::parse(key)
                .map_err(|e| format!("TESSERA_SIGNING_KEY, key {}: {e}", i + 1))?;
        }
        let verifier = if keys.is_empty() {
            None
        } else {
            Some(Verifier::with_keys(keys).map_err(|e| format!("TESSERA_SIGNING_KEY: {e}"))?)
        };
        let mosaic_secret = mosaic_secret.filter(|s| !s.is_empty()).map(str::to_owned);
        if verifier.is_none() && mosaic_secret.is_none() {
            return Err(format!(
                "set TESSERA_SIGNING_KEY and/or MOSAIC_WEBHOOK_SECRET\n{USAGE}"
            ));
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
    /// Names lowercased (HTTP header names are case-insensitive).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (lowercase).
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

/// The ids seen lately, oldest first: retries and resends of an event reuse
/// its `webhook-id`, so an id seen again is an event already handled.
#[derive(Default)]
struct Dedupe {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Dedupe {
    /// Remembers `id`; false when it was already there. Past
    /// [`REMEMBERED_IDS`] ids the oldest is forgotten.
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
    // Verify the raw body as received, then parse it.
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
    // Only authenticated deliveries get here, so nobody else can make us
    // skip a real event by sending its id first. (A retry of an event
    // carries fresh signed URLs, so compare ids, not bodies.)
    if let Some(id) = req.header(WEBHOOK_ID_HEADER)
        && !dedupe.first_time(id)
    {
        return respond(200, "duplicate, already processed");
    }
    // Acknowledge fast: Tessera gives an attempt 30 s (`webhook_timeout_ms`)
    // and retries when it gets no 2xx in time. Real work (downloading the
    // outputs, whose signed URLs last an hour) belongs on a queue or another
    // thread. If handing the event off can fail, remember the id only once
    // it succeeded, or answer non-2xx so that Tessera retries.
    process(&payload);
    respond(200, "ok")
}

/// One line per event: flag, run id, status, number of outputs.
fn describe(payload: &WebhookPayload) -> String {
    match payload {
        WebhookPayload::RunStarted(p) => format!(
            "RUN_STARTED  run {} running, {} input(s)",
            p.run_id,
            p.inputs.len()
        ),
        WebhookPayload::RunFinished(p) => format!(
            "RUN_FINISHED run {} {}{}, {} output(s)",
            p.run_id,
            p.status.as_str(),
            if p.cancelled { " (cancelled)" } else { "" },
            p.outputs.len()
        ),
        WebhookPayload::Test(p) => format!("TEST         run test: {}", p.message),
    }
}

/// Reads one line of the request head, spending at most `budget` bytes of
/// it; `None` at the end of the stream.
fn head_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, Response> {
    let mut line = String::new();
    let read = reader
        .by_ref()
        .take(*budget as u64)
        .read_line(&mut line)
        .map_err(|_| respond(400, "unreadable request head"))?;
    *budget -= read;
    if read == 0 && *budget > 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') {
        return Err(if *budget == 0 {
            respond(431, "request head too large")
        } else {
            respond(400, "request head cut short")
        });
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Reads one request. `Ok(None)`: the client closed without sending one;
/// `Err` carries the response to send instead.
fn read_request(stream: &mut (impl Read + Write)) -> Result<Option<Request>, Response> {
    let mut reader = BufReader::new(&mut *stream);
    let mut budget = MAX_HEAD;
    let Some(request_line) = head_line(&mut reader, &mut budget)? else {
        return Ok(None);
    };
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, _target, version] = parts[..] else {
        return Err(respond(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(respond(400, "HTTP/1.x only"));
    }
    let mut headers = Vec::new();
    loop {
        let line = head_line(&mut reader, &mut budget)?
            .ok_or_else(|| respond(400, "request head cut short"))?;
        if line.is_empty() {
            break;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
            _ => return Err(respond(400, "malformed header line")),
        }
    }
    let request = Request {
        method: method.to_owned(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(respond(
            411,
            "send a Content-Length (chunked bodies are not supported)",
        ));
    }
    let lengths: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let length = match lengths[..] {
        [] => 0,
        [v] if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return Err(respond(400, "bad Content-Length")),
    };
    if length > MAX_BODY {
        return Err(respond(413, "body too large"));
    }
    let expects_continue = request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && length > 0 {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| respond(400, "connection lost"))?;
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|_| respond(400, "body shorter than Content-Length"))?;
    Ok(Some(Request { body, ..request }))
}

fn write_response(stream: &mut impl Write, response: &Response) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let allow = if response.status == 405 {
        "allow: POST\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "HTTP/1.1 {} {reason}\r\n{allow}content-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{}",
        response.status,
        response.body.len(),
        response.body
    )?;
    stream.flush()
}

/// Serves one connection: one request, one response.
fn serve(mut stream: TcpStream, config: &Config, dedupe: &Mutex<Dedupe>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let response = match read_request(&mut stream) {
        Ok(None) => return,
        Ok(Some(req)) => {
            let mut dedupe = dedupe.lock().unwrap_or_else(|e| e.into_inner());
            handle(&req, config, &mut dedupe, &mut |p| {
                println!("{}", describe(p))
            })
        }
        Err(response) => response,
    };
    if response.status != 200 {
        // Reasons name what failed, never a secret.
        eprintln!("refused ({}): {}", response.status, response.body);
    }
    let _ = write_response(&mut stream, &response);
}

fn main() {
    let addr = match std::env::args().nth(1) {
        Some(arg) if arg == "-h" || arg == "--help" => {
            println!("{USAGE}");
            return;
        }
        Some(arg) if arg.starts_with('-') => {
            eprintln!("receiver: unknown option {arg}\n{USAGE}");
            std::process::exit(2);
        }
        Some(arg) => arg,
        None => DEFAULT_ADDR.to_owned(),
    };
    let config = match Config::from_env() {
        Ok(config) => Arc::new(config),
        Err(e) => {
            eprintln!("receiver: {e}");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("receiver: cannot listen on {addr}: {e}");
        std::process::exit(2);
    });
    let bound = listener.local_addr().map_or(addr, |a| a.to_string());
    let checks: Vec<&str> = [
        config.verifier.as_ref().map(|_| "Standard Webhooks"),
        config.mosaic_secret.as_ref().map(|_| "X-Mosaic-Signature"),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!(
        "listening on http://{bound}/ (any path), checking {}",
        checks.join(" and ")
    );
    let dedupe = Arc::new(Mutex::new(Dedupe::default()));
    for stream in listener.incoming().flatten() {
        let (config, dedupe) = (config.clone(), dedupe.clone());
        std::thread::spawn(move || serve(stream, &config, &dedupe));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::{SystemTime, UNIX_EPOCH};

    // The key of the Standard Webhooks test vector.
    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SECRET: &str = "my-webhook-secret";
    const BODY: &str = r#"{"flag":"TEST","run_id":"test","timestamp":"2026-12-04T10:00:00.000Z","user_id":"u","message":"Test webhook from Tessera","test_data":{"description":"d","status":"test"}}"#;
    const FINISHED: &str = r#"{"flag":"RUN_FINISHED","agent_id":"a","run_id":"r1","status":"partial_complete","inputs":[],"outputs":[{"id":"o","video_url":"https://x/v","thumbnail_url":"https://x/t","completed_at":"2026-12-04T10:00:00Z"}]}"#;

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn other_key() -> SigningKey {
        SigningKey::from_bytes(vec![7; 32]).unwrap()
    }

    fn config() -> Config {
        Config::new(Some(KEY), Some(SECRET)).unwrap()
    }

    /// A delivery as Tessera sends it, signed with `key` at `timestamp`.
    fn signed(key: &SigningKey, id: &str, timestamp: i64, body: &str, secret: &str) -> Request {
        Request {
            method: "POST".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("webhook-id".into(), id.into()),
                ("webhook-timestamp".into(), timestamp.to_string()),
                (
                    "webhook-signature".into(),
                    key.sign(id, timestamp, body.as_bytes()),
                ),
                ("x-mosaic-signature".into(), secret.into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    fn delivery(id: &str, timestamp: i64, body: &str, secret: &str) -> Request {
        signed(
            &SigningKey::parse(KEY).unwrap(),
            id,
            timestamp,
            body,
            secret,
        )
    }

    /// The response and the lines printed for processed events.
    fn run_with(req: &Request, config: &Config, dedupe: &mut Dedupe) -> (Response, Vec<String>) {
        let mut processed = Vec::new();
        let response = handle(req, config, dedupe, &mut |p| processed.push(describe(p)));
        (response, processed)
    }

    fn run(req: &Request, dedupe: &mut Dedupe) -> (Response, Vec<String>) {
        run_with(req, &config(), dedupe)
    }

    #[test]
    fn a_signed_delivery_is_processed_once_and_its_retry_acknowledged() {
        let mut dedupe = Dedupe::default();
        let req = delivery("msg_1", now(), FINISHED, SECRET);
        let (response, processed) = run(&req, &mut dedupe);
        assert_eq!(response, respond(200, "ok"));
        assert_eq!(
            processed,
            ["RUN_FINISHED run r1 partial_complete, 1 output(s)"]
        );
        // A retry: same id, a later timestamp and (as Tessera re-signs file
        // URLs per attempt) possibly another body.
        let retry = delivery("msg_1", now(), BODY, SECRET);
        let (response, processed) = run(&retry, &mut dedupe);
        assert_eq!((response.status, processed.len()), (200, 0));
    }

    #[test]
    fn tampered_bodies_wrong_secrets_stale_timestamps_and_missing_headers_are_refused() {
        let mut dedupe = Dedupe::default();
        let mut tampered = delivery("msg_2", now(), BODY, SECRET);
        tampered.body.push(b' ');
        let wrong_secret = delivery("msg_3", now(), BODY, "not-the-secret");
        let stale = delivery("msg_4", now() - 3600, BODY, SECRET);
        let wrong_key = signed(&other_key(), "msg_5", now(), BODY, SECRET);
        let mut unsigned = delivery("msg_6", now(), BODY, SECRET);
        unsigned.headers.retain(|(n, _)| !n.starts_with("webhook-"));
        let expected = [
            "no signature matches",
            "X-Mosaic-Signature does not match",
            "the webhook-timestamp is too old",
            "no signature matches",
            "the webhook-id header is missing",
        ];
        for (req, reason) in [tampered, wrong_secret, stale, wrong_key, unsigned]
            .iter()
            .zip(expected)
        {
            let (response, processed) = run(req, &mut dedupe);
            assert_eq!(response, respond(401, reason));
            assert!(processed.is_empty());
            assert!(!response.body.contains(SECRET) && !response.body.contains(KEY));
        }
        // A refused delivery is not remembered: its genuine retry goes through.
        let retry = delivery("msg_2", now(), BODY, SECRET);
        assert_eq!(run(&retry, &mut dedupe).1.len(), 1);
    }

    #[test]
    fn bad_json_is_a_bad_request_and_other_methods_are_refused() {
        let mut dedupe = Dedupe::default();
        for body in ["{not json", r#"{"flag":"NOPE"}"#, r#"{"flag":"TEST"}"#] {
            let req = delivery("msg_7", now(), body, SECRET);
            let (response, processed) = run(&req, &mut dedupe);
            assert_eq!((response.status, processed.len()), (400, 0), "{body}");
        }
        let mut get = delivery("msg_8", now(), BODY, SECRET);
        get.method = "GET".into();
        assert_eq!(run(&get, &mut dedupe).0.status, 405);
    }

    #[test]
    fn either_scheme_alone_is_enough_when_only_it_is_configured() {
        let mut dedupe = Dedupe::default();
        let mosaic_only = Config::new(None, Some(SECRET)).unwrap();
        let mut req = delivery("msg_9", now(), BODY, SECRET);
        req.headers.retain(|(n, _)| !n.starts_with("webhook-"));
        assert_eq!(run_with(&req, &mosaic_only, &mut dedupe).0.status, 200);

        let standard_only = Config::new(Some(KEY), None).unwrap();
        let mut req = delivery("msg_10", now(), BODY, "");
        req.headers.retain(|(n, _)| n != "x-mosaic-signature");
        assert_eq!(run_with(&req, &standard_only, &mut dedupe).0.status, 200);
    }

    #[test]
    fn during_a_rotation_either_key_verifies() {
        let mut dedupe = Dedupe::default();
        let keys = format!("{KEY}, {}", other_key().as_whsec());
        let rotating = Config::new(Some(&keys), None).unwrap();
        let old = delivery("msg_11", now(), BODY, "");
        let new = signed(&other_key(), "msg_12", now(), BODY, "");
        assert_eq!(run_with(&old, &rotating, &mut dedupe).0.status, 200);
        assert_eq!(run_with(&new, &rotating, &mut dedupe).0.status, 200);
    }

    #[test]
    fn the_configuration_needs_a_check_and_never_repeats_a_key() {
        let err = Config::new(None, Some("")).err().unwrap();
        assert!(err.contains("TESSERA_SIGNING_KEY and/or MOSAIC_WEBHOOK_SECRET"));
        assert!(Config::new(Some(" , "), None).is_err());
        let bad = "whsec_c2VjcmV0LWJ1dC10b28tc2hvcnQ=";
        let err = Config::new(Some(&format!("{KEY},{bad}")), None)
            .err()
            .unwrap();
        assert!(err.starts_with("TESSERA_SIGNING_KEY, key 2:"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
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

    /// A stream that reads `input` and collects what is written.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn parse_raw(raw: &[u8]) -> (Result<Option<Request>, Response>, String) {
        let mut stream = Duplex {
            input: Cursor::new(raw.to_vec()),
            output: Vec::new(),
        };
        let result = read_request(&mut stream);
        (result, String::from_utf8(stream.output).unwrap())
    }

    fn status_of(raw: &[u8]) -> u16 {
        match parse_raw(raw).0 {
            Ok(_) => 200,
            Err(response) => response.status,
        }
    }

    #[test]
    fn requests_are_read_with_case_insensitive_headers_and_an_exact_body() {
        let raw =
            b"POST /hook HTTP/1.1\r\nHost: x\r\nWebhook-ID: msg_1\r\nX-Mosaic-Signature:  s \r\n\
                    CONTENT-LENGTH: 5\r\n\r\nhello, and what follows";
        let (result, written) = parse_raw(raw);
        let req = result.ok().flatten().unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.header("webhook-id"), Some("msg_1"));
        assert_eq!(req.header(MOSAIC_SIGNATURE_HEADER), Some("s"));
        assert_eq!(req.body, b"hello");
        assert_eq!(written, "", "no interim response unasked");

        let (result, written) =
            parse_raw(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(result.ok().flatten().unwrap().body, b"{}");
        assert_eq!(written, "HTTP/1.1 100 Continue\r\n\r\n");

        assert!(matches!(parse_raw(b"").0, Ok(None)), "closed at once");
    }

    #[test]
    fn malformed_oversized_or_unframed_requests_are_refused() {
        let too_long = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(status_of(too_long.as_bytes()), 413);
        let huge_head = format!("POST / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(status_of(huge_head.as_bytes()), 431);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(status_of(chunked), 411);
        for raw in [
            &b"POST /\r\n\r\n"[..],
            b"POST / HTTP/2\r\n\r\n",
            b"POST / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}",
            b"POST / HTTP/1.1\r\nHost: x\r\n",
        ] {
            assert_eq!(status_of(raw), 400, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn a_delivery_over_a_real_socket_is_answered() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = config();
        let dedupe = Mutex::new(Dedupe::default());
        let req = delivery("msg_13", now(), BODY, SECRET);
        let mut raw = format!("POST /hook HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in &req.headers {
            raw += &format!("{name}: {value}\r\n");
        }
        raw += &format!("Content-Length: {}\r\n\r\n{BODY}", BODY.len());
        let answer = std::thread::scope(|s| {
            s.spawn(|| serve(listener.accept().unwrap().0, &config, &dedupe));
            let mut client = TcpStream::connect(addr).unwrap();
            client.write_all(raw.as_bytes()).unwrap();
            let mut answer = String::new();
            client.read_to_string(&mut answer).unwrap();
            answer
        });
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
        assert!(dedupe.lock().unwrap().seen.contains("msg_13"));
    }

    mod readme_sample {
        use std::collections::HashMap;

        use tessera_webhook::{
            Error, MOSAIC_SIGNATURE_HEADER, Verifier, WebhookPayload, mosaic_signature_matches,
        };

        /// `headers`: lowercase names. `body`: the raw bytes, as received.
        fn on_webhook(
            verifier: &Verifier,
            headers: &HashMap<String, String>,
            body: &[u8],
        ) -> Result<(), Error> {
            let header = |name: &str| headers.get(name).map(String::as_str);
            match verifier.verify_and_parse(header, body)? {
                WebhookPayload::RunStarted(started) => println!("{} started", started.run_id),
                WebhookPayload::RunFinished(finished) => {
                    for output in &finished.outputs {
                        // A signed URL, valid for one hour from this attempt.
                        println!("{} {}", finished.status.as_str(), output.video_url);
                    }
                }
                WebhookPayload::Test(test) => println!("{}", test.message),
            }
            Ok(())
        }

        /// The hosted Mosaic service's scheme: the secret itself, verbatim.
        fn mosaic_ok(secret: &str, headers: &HashMap<String, String>) -> bool {
            let given = headers
                .get(MOSAIC_SIGNATURE_HEADER)
                .map_or("", String::as_str);
            mosaic_signature_matches(secret, given)
        }
        // README sample end

        #[test]
        fn the_readme_sample_works() {
            use super::*;
            let req = delivery("msg_14", now(), FINISHED, SECRET);
            let headers: HashMap<String, String> = req.headers.iter().cloned().collect();
            let verifier = Verifier::new(KEY).unwrap();
            assert!(on_webhook(&verifier, &headers, &req.body).is_ok());
            let tampered = [&req.body[..], b" "].concat();
            assert!(matches!(
                on_webhook(&verifier, &headers, &tampered),
                Err(Error::Verify(_))
            ));
            assert!(mosaic_ok(SECRET, &headers));
            assert!(!mosaic_ok("another secret", &headers));
        }
    }

    #[test]
    fn the_readme_shows_the_sample_above_verbatim() {
        let source = include_str!("receiver.rs");
        let start = source.find("mod readme_sample {\n").unwrap();
        let end = source.find("        // README sample end").unwrap();
        let sample: String = source[start..end]
            .lines()
            .skip(1)
            .map(|line| format!("{}\n", line.strip_prefix("        ").unwrap_or(line)))
            .collect();
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&format!("```rust\n{sample}```")),
            "the README's Rust sample differs from:\n{sample}"
        );
    }
}
