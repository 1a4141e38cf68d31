//! The receiver every delivery benchmark posts to.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;

/// A receiver that answers 200 at once and counts distinct webhook ids.
pub struct Counter {
    pub url: String,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Counter {
    pub async fn start() -> anyhow::Result<Counter> {
        let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
        let record = seen.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap| {
                let record = record.clone();
                async move {
                    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                        record.lock().unwrap().insert(id.to_owned());
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Counter { url, seen })
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }
}
