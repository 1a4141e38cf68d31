//! Outbound clients against real loopback sockets.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::test_support::{Hits, closed_port, config, read_head, spawn_raw, spawn_router};
use super::*;

const SHORT: Duration = Duration::from_millis(300);

fn found(location: String) -> (StatusCode, [(header::HeaderName, String); 1]) {
    (StatusCode::FOUND, [(header::LOCATION, location)])
}

/// A server whose `/` counts hits and answers 200 "ok".
async fn counting_server() -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let seen = hits.clone();
    let router = Router::new().route(
        "/",
        get(move || async move {
            seen.record();
            "ok"
        }),
    );
    (spawn_router(router).await, hits)
}

/// A server whose `/start` redirects to `location`.
async fn redirecting_server(location: &'static str) -> SocketAddr {
    let router = Router::new().route("/start", get(move || async move { found(location.into()) }));
    spawn_router(router).await
}

async fn error_of(client: &reqwest::Client, url: String) -> reqwest::Error {
    match client.get(url).timeout(SHORT * 10).send().await {
        Ok(resp) => resp.bytes().await.expect_err("the request fails"),
        Err(err) => err,
    }
}

#[test]
fn dns_overrides_parse_repeated_hosts_and_ipv6() {
    let map =
        parse_dns_overrides("a.test=127.0.0.1, A.test.=[::1],b.test=10.0.0.1").expect("valid");
    assert_eq!(map["a.test"].len(), 2);
    assert_eq!(map["b.test"], vec![IpAddr::from([10, 0, 0, 1])]);
    assert!(parse_dns_overrides("").expect("empty is valid").is_empty());
    assert!(parse_dns_overrides("a.test").is_err());
    assert!(parse_dns_overrides("a.test=not-an-ip").is_err());
}

#[test]
fn redirect_verdict_refuses_private_literals_and_long_chains() {
    let policy = AddressPolicy::parse("127.0.0.0/8").expect("valid");
    let url = |s: &str| url::Url::parse(s).expect("valid url");
    assert!(redirect_verdict(&url("http://127.0.0.1:9/x"), 1, &policy).is_ok());
    assert!(redirect_verdict(&url("https://example.com/x"), 1, &policy).is_ok());
    let refused = redirect_verdict(&url("http://10.0.0.1/"), 1, &policy);
    assert!(matches!(refused, Err(PolicyError::Redirect(_))));
    let refused = redirect_verdict(&url("file:///etc/passwd"), 1, &policy);
    assert!(matches!(refused, Err(PolicyError::Redirect(_))));
    let too_many = redirect_verdict(&url("https://example.com/x"), MAX_REDIRECTS + 1, &policy);
    assert!(matches!(too_many, Err(PolicyError::TooManyRedirects)));
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_when_private_targets_are_denied() {
    let (addr, hits) = counting_server().await;
    let client = webhook_client(&config("false", "hooks.test=127.0.0.1"));
    let err = error_of(&client, format!("http://hooks.test:{}/", addr.port())).await;
    assert_eq!(classify(&err), ErrorClass::RefusedAddress);
    assert!(
        error_detail(&err).contains("non-public"),
        "{}",
        error_detail(&err)
    );
    assert_eq!(hits.count(), 0);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_reached_when_the_allow_list_has_it() {
    let (addr, hits) = counting_server().await;
    let client = webhook_client(&config("127.0.0.0/8", "hooks.test=127.0.0.1"));
    let resp = client
        .get(format!("http://hooks.test:{}/", addr.port()))
        .send()
        .await
        .expect("allowed");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn requests_carry_the_tessera_user_agent() {
    let router = Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            headers[header::USER_AGENT]
                .to_str()
                .unwrap_or("")
                .to_owned()
        }),
    );
    let addr = spawn_router(router).await;
    let client = webhook_client(&config("127.0.0.1", ""));
    let agent = client
        .get(format!("http://{addr}/"))
        .send()
        .await
        .expect("sent");
    assert_eq!(agent.text().await.expect("body"), USER_AGENT);
    assert!(USER_AGENT.starts_with("Tessera/"));
}

#[tokio::test]
async fn the_webhook_client_does_not_follow_a_redirect() {
    let (target, hits) = counting_server().await;
    let location = format!("http://{target}/");
    let router = Router::new().route("/hook", get(move || async move { found(location) }));
    let addr = spawn_router(router).await;
    let client = webhook_client(&config("127.0.0.0/8", ""));
    let resp = client
        .get(format!("http://{addr}/hook"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(hits.count(), 0, "the Location was never requested");
}

#[tokio::test]
async fn a_redirect_to_a_private_literal_is_refused_before_dialling() {
    let addr = redirecting_server("http://10.0.0.1/").await;
    let client = download_client(&config("127.0.0.0/8", ""));
    let err = error_of(&client, format!("http://{addr}/start")).await;
    assert_eq!(classify(&err), ErrorClass::RefusedAddress);
    let detail = error_detail(&err);
    assert!(
        detail.starts_with("redirect refused"),
        "refused by the redirect policy: {detail}"
    );
}

#[tokio::test]
async fn a_redirect_to_a_denied_loopback_literal_is_refused() {
    let addr = redirecting_server("http://127.0.0.2:9/").await;
    let client = download_client(&config("127.0.0.1/32", ""));
    let err = error_of(&client, format!("http://{addr}/start")).await;
    assert_eq!(classify(&err), ErrorClass::RefusedAddress);
}

#[tokio::test]
async fn a_redirect_to_a_name_resolving_inward_is_refused_by_the_resolver() {
    let addr = redirecting_server("http://inward.test:9/").await;
    let client = download_client(&config("127.0.0.1/32", "inward.test=127.0.0.2"));
    let err = error_of(&client, format!("http://{addr}/start")).await;
    assert_eq!(classify(&err), ErrorClass::RefusedAddress);
}

#[tokio::test]
async fn the_download_client_follows_allowed_redirects_and_stops_loops() {
    let router = Router::new()
        .route("/start", get(|| async { found("/file".into()) }))
        .route("/file", get(|| async { "video" }))
        .route("/loop", get(|| async { found("/loop".into()) }));
    let addr = spawn_router(router).await;
    let client = download_client(&config("127.0.0.1", ""));
    let body = client
        .get(format!("http://{addr}/start"))
        .send()
        .await
        .expect("followed");
    assert_eq!(body.text().await.expect("body"), "video");
    let err = error_of(&client, format!("http://{addr}/loop")).await;
    assert_eq!(classify(&err), ErrorClass::Status);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let addr = closed_port().await;
    let client = webhook_client(&config("127.0.0.1", ""));
    let err = error_of(&client, format!("http://{addr}/")).await;
    assert_eq!(classify(&err), ErrorClass::Connect);
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let addr = spawn_raw(|stream| async move {
        let _held = stream;
        std::future::pending::<()>().await;
    })
    .await;
    let client = webhook_client(&config("127.0.0.1", ""));
    let err = client
        .get(format!("http://{addr}/"))
        .timeout(SHORT)
        .send()
        .await
        .expect_err("times out");
    assert_eq!(classify(&err), ErrorClass::Timeout);
}

#[tokio::test]
async fn a_server_closing_mid_response_is_a_reset() {
    let addr = spawn_raw(|mut stream| async move {
        read_head(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort";
        let _ = stream.write_all(head.as_bytes()).await;
    })
    .await;
    let client = webhook_client(&config("127.0.0.1", ""));
    let err = error_of(&client, format!("http://{addr}/")).await;
    assert_eq!(classify(&err), ErrorClass::Reset);
}

#[tokio::test]
async fn a_server_closing_before_any_response_is_a_reset() {
    let addr = spawn_raw(|mut stream| async move { read_head(&mut stream).await }).await;
    let client = webhook_client(&config("127.0.0.1", ""));
    let err = error_of(&client, format!("http://{addr}/")).await;
    assert_eq!(classify(&err), ErrorClass::Reset);
}

#[tokio::test]
async fn a_failed_tls_handshake_is_tls() {
    let addr = spawn_raw(|mut stream| async move {
        // Read the ClientHello first: closing with unread data would send a
        // TCP reset instead of the plaintext answer.
        let _ = stream.read(&mut [0u8; 4096]).await;
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
    })
    .await;
    let client = webhook_client(&config("127.0.0.1", ""));
    let err = error_of(&client, format!("https://{addr}/")).await;
    assert_eq!(classify(&err), ErrorClass::Tls);
}
