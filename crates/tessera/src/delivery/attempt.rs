//! One webhook attempt: build the request, send it under one deadline that
//! covers connecting, sending, the response headers and reading the body, and
//! read at most a small cap of the body.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use crate::domain::retry::parse_retry_after;
use crate::net::{ErrorClass, classify, error_detail};

/// Most response bytes read from a receiver.
pub const READ_CAP: usize = 64 * 1024;
/// Most response bytes stored with an attempt.
pub const SNIPPET_CAP: usize = 4 * 1024;

/// What happened, in a form ready to record.
#[derive(Debug)]
pub struct Sent {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub error: Option<(ErrorClass, String)>,
    pub snippet: Option<String>,
    pub truncated: bool,
    pub duration: Duration,
    /// Response headers, capped (see [`response_headers`]).
    pub response_headers: Vec<(String, String)>,
    /// A reason phrase that differs from the standard one for the status.
    pub reason: Option<String>,
}

impl Sent {
    /// An attempt that ended before any response arrived.
    pub fn no_response(error: (ErrorClass, String), duration: Duration) -> Self {
        Sent {
            status: None,
            retry_after: None,
            error: Some(error),
            snippet: None,
            truncated: false,
            duration,
            response_headers: Vec::new(),
            reason: None,
        }
    }
}

impl Sent {
    /// Replace every copy of `secret` in what the receiver sent back: a
    /// receiver that echoes its request (many debugging endpoints do) would
    /// otherwise put the plaintext `X-Mosaic-Signature` into the delivery
    /// log and the dashboard.
    pub fn redact(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let scrub = |text: &mut String| {
            if text.contains(secret) {
                *text = text.replace(secret, REDACTED);
            }
        };
        if let Some(snippet) = &mut self.snippet {
            scrub(snippet);
        }
        if let Some(reason) = &mut self.reason {
            scrub(reason);
        }
        if let Some((_, detail)) = &mut self.error {
            scrub(detail);
        }
        for (_, value) in &mut self.response_headers {
            scrub(value);
        }
    }
}

/// What a redacted secret reads as.
pub const REDACTED: &str = "[redacted]";

/// Most response headers stored with an attempt, and most characters per value.
const HEADERS_CAP: usize = 32;
const HEADER_VALUE_CAP: usize = 256;

/// Send one POST. Never takes longer than `deadline` (plus scheduling noise):
/// the headers and the body share one deadline, and a status that arrived
/// before the body stalled is still recorded.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    deadline: Duration,
) -> Sent {
    let started = Instant::now();
    let until = tokio::time::Instant::now() + deadline;
    let timed_out = |status: Option<u16>, response_headers, reason| Sent {
        status,
        response_headers,
        reason,
        ..Sent::no_response(
            (
                ErrorClass::Timeout,
                format!("no complete answer within {} ms", deadline.as_millis()),
            ),
            started.elapsed(),
        )
    };
    let response =
        match tokio::time::timeout_at(until, client.post(url).headers(headers).body(body).send())
            .await
        {
            Err(_) => return timed_out(None, Vec::new(), None),
            Ok(Err(e)) => {
                return Sent::no_response((classify(&e), error_detail(&e)), started.elapsed());
            }
            Ok(Ok(response)) => response,
        };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let response_headers = response_headers(response.headers());
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
    let Ok((bytes, truncated, body_error)) =
        tokio::time::timeout_at(until, read_capped(response)).await
    else {
        return timed_out(Some(status), response_headers, reason);
    };
    let (snippet, cut) = snippet(&bytes);
    // A body that breaks off is a failed exchange even after a 2xx: the
    // receiver may have crashed mid-way, and a duplicate is better than a
    // lost webhook.
    let error = match body_error {
        Some(e) => Some((
            ErrorClass::Body,
            format!("HTTP {status}, then the body failed: {}", error_detail(&e)),
        )),
        None if (200..300).contains(&status) => None,
        None => Some((ErrorClass::Status, format!("HTTP {status}"))),
    };
    Sent {
        status: Some(status),
        retry_after,
        error,
        snippet: (!bytes.is_empty()).then_some(snippet),
        truncated: truncated || cut,
        duration: started.elapsed(),
        response_headers,
        reason,
    }
}

/// The first [`HEADERS_CAP`] response headers, values cut to
/// [`HEADER_VALUE_CAP`] characters (invalid UTF-8 replaced).
fn response_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .take(HEADERS_CAP)
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes());
            (
                name.as_str().to_owned(),
                text.chars().take(HEADER_VALUE_CAP).collect(),
            )
        })
        .collect()
}

/// The request headers as stored with an attempt: signatures shortened to
/// their first characters (enough to compare, useless to forge) and the
/// plaintext secret masked.
pub fn recorded_request_headers(
    headers: &HeaderMap,
    url: &str,
    body_len: usize,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes());
            let shown = match name.as_str() {
                "webhook-signature" => text
                    .split(' ')
                    .map(|sig| match sig.split_once(',') {
                        Some((version, mac)) => {
                            format!("{version},{}…", mac.chars().take(6).collect::<String>())
                        }
                        None => "…".to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                "x-mosaic-signature" => crate::domain::signing::mask_secret(&text),
                _ => text.into_owned(),
            };
            (name.as_str().to_owned(), shown)
        })
        .collect();
    out.push(("content-length".into(), body_len.to_string()));
    out.push(("user-agent".into(), crate::net::USER_AGENT.into()));
    // Added by the HTTP client; recorded so the list is what went out.
    out.push(("accept".into(), "*/*".into()));
    if let Some(host) = host_header(url) {
        out.push(("host".into(), host));
    }
    out
}

/// The `Host` header a request to `url` carries: the host, and the port when
/// it is not the scheme's default.
fn host_header(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Read up to [`READ_CAP`] bytes; report whether more was there and whether
/// the body broke off.
async fn read_capped(mut response: reqwest::Response) -> (Vec<u8>, bool, Option<reqwest::Error>) {
    let mut buf = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = READ_CAP - buf.len();
                if chunk.len() > room {
                    buf.extend_from_slice(&chunk[..room]);
                    return (buf, true, None);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return (buf, false, None),
            Err(e) => return (buf, false, Some(e)),
        }
    }
}

/// The stored snippet: at most [`SNIPPET_CAP`] bytes, as text (invalid UTF-8
/// replaced), cut on a character boundary.
fn snippet(bytes: &[u8]) -> (String, bool) {
    let cut = bytes.len() > SNIPPET_CAP;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SNIPPET_CAP)]);
    (text.into_owned(), cut)
}

/// The headers every webhook request carries.
pub fn headers(
    event_id: &str,
    timestamp: i64,
    signatures: &str,
    mosaic_secret: Option<&str>,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("webhook-id", event_id);
    put("webhook-timestamp", &timestamp.to_string());
    put("webhook-signature", signatures);
    if let Some(secret) = mosaic_secret {
        let mut v = HeaderValue::from_str(secret).unwrap_or_else(|_| HeaderValue::from_static(""));
        v.set_sensitive(true);
        h.insert("x-mosaic-signature", v);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_headers_hide_the_secret_and_shorten_signatures() {
        let h = headers(
            "msg_1",
            5,
            "v1,abcdefghijkl v1,zyxwvutsrq",
            Some("s3cr3t-value-long-enough"),
        );
        let recorded = recorded_request_headers(&h, "http://127.0.0.1:8080/hook?t=1", 42);
        let get = |n: &str| {
            recorded
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("webhook-signature"), "v1,abcdef… v1,zyxwvu…");
        assert_eq!(get("x-mosaic-signature"), "••••ough");
        assert_eq!(get("webhook-id"), "msg_1");
        assert_eq!(get("content-length"), "42");
        assert_eq!(get("host"), "127.0.0.1:8080");
        assert_eq!(get("accept"), "*/*");
        let all = format!("{recorded:?}");
        assert!(!all.contains("s3cr3t") && !all.contains("ghijkl"));
    }

    #[test]
    fn response_headers_are_capped() {
        let mut h = HeaderMap::new();
        for i in 0..40 {
            h.insert(
                reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
                HeaderValue::from_str(&"v".repeat(300)).unwrap(),
            );
        }
        let kept = response_headers(&h);
        assert_eq!(kept.len(), HEADERS_CAP);
        assert!(kept.iter().all(|(_, v)| v.len() == HEADER_VALUE_CAP));
    }

    #[test]
    fn an_echoed_secret_is_redacted_everywhere() {
        let secret = "s3cr3t-value";
        let mut sent = Sent {
            status: Some(500),
            reason: Some(format!("Bad {secret}")),
            snippet: Some(format!(
                "{{\"x-mosaic-signature\":\"{secret}\",\"again\":\"{secret}\"}}"
            )),
            response_headers: vec![("x-echo".into(), secret.into())],
            ..Sent::no_response(
                (ErrorClass::Status, format!("HTTP 500 {secret}")),
                Duration::ZERO,
            )
        };
        sent.redact(secret);
        let all = format!("{sent:?}");
        assert!(!all.contains(secret), "{all}");
        assert_eq!(all.matches(REDACTED).count(), 5, "{all}");
    }

    #[test]
    fn snippets_are_capped_and_lossy() {
        let (s, cut) = snippet(&[0xff, b'a']);
        assert_eq!(s, "\u{fffd}a");
        assert!(!cut);
        let (s, cut) = snippet(&vec![b'x'; SNIPPET_CAP + 1]);
        assert_eq!(s.len(), SNIPPET_CAP);
        assert!(cut);
    }
}
