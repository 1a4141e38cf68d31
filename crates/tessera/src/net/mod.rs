//! Outbound HTTP: the only place that builds HTTP clients, so the address
//! policy is enforced on every request the server makes (webhooks, input
//! downloads, feeds).
//!
//! How the policy is enforced, per kind of host:
//! - Names go through [`SafeResolver`], which drops every address the policy
//!   refuses. reqwest dials exactly the addresses the resolver returns, so a
//!   name that starts resolving inward (DNS rebinding) is caught on the next
//!   connection.
//! - IP literals never reach the resolver (hyper dials them directly), so the
//!   caller must run [`check_url`](crate::domain::address::check_url) (or
//!   [`check_parsed`](crate::domain::address::check_parsed)) on the URL before
//!   each request; the download client does it for every redirect hop.
//! - Proxies are never used, even when `*_PROXY` is set: a proxy would
//!   resolve and dial on our behalf, out of the policy's reach.

mod classify;
mod download;
pub mod resolver;

#[cfg(test)]
mod test_support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};

use crate::domain::address::{AddressPolicy, check_parsed};

pub use classify::{ErrorClass, classify, error_detail};
pub use download::{DownloadError, download_to_file};
pub use resolver::{DnsError, PolicyError, ResolveError, SafeResolver};

/// `User-Agent` of every outbound request.
pub const USER_AGENT: &str = concat!("Tessera/", env!("CARGO_PKG_VERSION"));
/// Connect timeout of both clients. The caller's deadline over the whole
/// attempt also bounds the connect, so the effective connect timeout is
/// `min(CONNECT_TIMEOUT, attempt timeout)`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirect hops the download client follows.
pub const MAX_REDIRECTS: usize = 5;

/// What outbound requests may reach.
#[derive(Clone, Debug, Default)]
pub struct NetConfig {
    /// Which non-global addresses are allowed (`TESSERA_ALLOW_PRIVATE_TARGETS`).
    pub policy: AddressPolicy,
    /// Names answered without DNS (`TESSERA_DNS_OVERRIDES`); a test hook.
    pub dns_overrides: HashMap<String, Vec<IpAddr>>,
}

/// Parses `host=ip,host2=ip`; repeat a host to give it several addresses.
/// Host names are compared case-insensitively and without a trailing dot.
pub fn parse_dns_overrides(s: &str) -> Result<HashMap<String, Vec<IpAddr>>, String> {
    let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, ip) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}` is not of the form host=ip"))?;
        let host = resolver::normalize_host(host);
        if host.is_empty() {
            return Err(format!("`{entry}` has no host name"));
        }
        let ip = ip.trim();
        let ip: IpAddr = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("`{ip}` in `{entry}` is not an IP address"))?;
        map.entry(host).or_default().push(ip);
    }
    Ok(map)
}

/// The client for webhooks: redirects are never followed (a 3xx is a failed
/// attempt), no proxy, [`SafeResolver`], the Tessera `User-Agent`, HTTP/1
/// with pooled connections.
///
/// No overall timeout is set here: the caller puts one deadline over the
/// whole attempt, reading the body included. The caller also checks the URL
/// with `check_parsed` before each attempt, since IP literals bypass the
/// resolver.
pub fn webhook_client(cfg: &NetConfig) -> reqwest::Client {
    build(base_builder(cfg).redirect(Policy::none()))
}

/// The client for downloading inputs: follows up to [`MAX_REDIRECTS`]
/// redirects, each hop re-checked with the URL rules and the address policy
/// before it is dialled (literal hops here, named hops in the resolver).
pub fn download_client(cfg: &NetConfig) -> reqwest::Client {
    let policy = cfg.policy.clone();
    let redirects = Policy::custom(move |attempt| follow_if_allowed(attempt, &policy));
    build(base_builder(cfg).redirect(redirects))
}

fn base_builder(cfg: &NetConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .no_proxy()
        .dns_resolver(Arc::new(SafeResolver::new(cfg)))
        .connect_timeout(CONNECT_TIMEOUT)
        .http1_only()
}

fn build(builder: reqwest::ClientBuilder) -> reqwest::Client {
    // Building fails only for an invalid static configuration or a TLS
    // backend that cannot start; both fail identically on every start, so
    // failing loudly at startup is the right response.
    builder
        .build()
        .expect("the outbound HTTP client configuration is valid")
}

fn follow_if_allowed(attempt: Attempt<'_>, policy: &AddressPolicy) -> reqwest::redirect::Action {
    match redirect_verdict(attempt.url(), attempt.previous().len(), policy) {
        Ok(()) => attempt.follow(),
        Err(err) => attempt.error(err),
    }
}

/// Whether the download client may follow a redirect to `next` after
/// `hops_so_far` requests (the first request counts as one).
fn redirect_verdict(
    next: &url::Url,
    hops_so_far: usize,
    policy: &AddressPolicy,
) -> Result<(), PolicyError> {
    if hops_so_far > MAX_REDIRECTS {
        return Err(PolicyError::TooManyRedirects);
    }
    check_parsed(next, policy).map_err(PolicyError::Redirect)
}

#[cfg(test)]
mod tests;
