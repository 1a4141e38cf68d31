//! The DNS resolver of every outbound client: answers from the overrides or
//! the system resolver, then drops every address the policy refuses.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::NetConfig;
use crate::domain::address::{AddressPolicy, UrlError};

/// A request refused by the address policy: at resolution time or when a
/// redirect was about to be followed. [`classify`](super::classify) reports
/// it as `refused_address`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{host} resolves only to non-public addresses, which are not allowed")]
    ResolvesInward { host: String },
    #[error("redirect refused: {0}")]
    Redirect(UrlError),
    #[error("too many redirects (more than {})", super::MAX_REDIRECTS)]
    TooManyRedirects,
}

/// A name that could not be resolved at all.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("could not resolve {host}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host} has no addresses")]
    NoAddresses { host: String },
}

/// reqwest resolver that enforces the address policy on every resolved
/// address. Overrides answer first; other names go to the system resolver.
#[derive(Clone, Debug)]
pub struct SafeResolver {
    policy: AddressPolicy,
    overrides: Arc<HashMap<String, Vec<IpAddr>>>,
}

/// Either way a resolution can fail.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Dns(#[from] DnsError),
}

impl SafeResolver {
    pub fn new(cfg: &NetConfig) -> Self {
        Self {
            policy: cfg.policy.clone(),
            overrides: Arc::new(cfg.dns_overrides.clone()),
        }
    }

    /// The addresses of `host` that the policy permits, in resolver order.
    /// Fails when there are none: [`PolicyError`] when addresses existed
    /// but all were refused, [`DnsError`] when the name did not resolve.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let host = normalize_host(host);
        // `*` answers every name without its own entry: a process started
        // with it sends no DNS query at all (used for fuzzing the API).
        let all = match self
            .overrides
            .get(&host)
            .or_else(|| self.overrides.get("*"))
        {
            Some(ips) => ips.clone(),
            None => system_lookup(&host).await?,
        };
        if all.is_empty() {
            return Err(DnsError::NoAddresses { host }.into());
        }
        let permitted: Vec<IpAddr> = all
            .into_iter()
            .filter(|ip| self.policy.permits(*ip))
            .collect();
        if permitted.is_empty() {
            return Err(PolicyError::ResolvesInward { host }.into());
        }
        Ok(permitted)
    }
}

impl ResolveError {
    /// The concrete error, boxed for reqwest: `classify` looks for
    /// [`PolicyError`] and [`DnsError`] themselves in the source chain.
    fn into_cause(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            Self::Policy(err) => Box::new(err),
            Self::Dns(err) => Box::new(err),
        }
    }
}

impl Resolve for SafeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = resolver
                .resolve_checked(&host)
                .await
                .map_err(ResolveError::into_cause)?;
            // Port 0 is replaced by reqwest with the URL's port.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Lowercase, no surrounding whitespace, no trailing dot: the form used as
/// the overrides key.
pub(super) fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

async fn system_lookup(host: &str) -> Result<Vec<IpAddr>, DnsError> {
    let addrs = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|source| DnsError::Lookup {
            host: host.to_owned(),
            source,
        })?;
    Ok(addrs.map(|addr| addr.ip()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(policy: &str, overrides: &str) -> SafeResolver {
        SafeResolver::new(&NetConfig {
            policy: AddressPolicy::parse(policy).expect("valid policy"),
            dns_overrides: super::super::parse_dns_overrides(overrides).expect("valid overrides"),
        })
    }

    #[tokio::test]
    async fn refuses_a_name_overridden_to_loopback_when_private_targets_are_denied() {
        let result = resolver("false", "hooks.test=127.0.0.1")
            .resolve_checked("hooks.test")
            .await;
        assert!(matches!(
            result,
            Err(ResolveError::Policy(PolicyError::ResolvesInward { .. }))
        ));
    }

    #[tokio::test]
    async fn a_wildcard_answers_every_other_name() {
        let r = resolver("127.0.0.0/8", "*=127.0.0.2,a.test=127.0.0.1");
        let ips = r
            .resolve_checked("any.example.com")
            .await
            .expect("wildcard");
        assert_eq!(ips, vec![IpAddr::from([127, 0, 0, 2])]);
        let ips = r.resolve_checked("a.test").await.expect("own entry");
        assert_eq!(ips, vec![IpAddr::from([127, 0, 0, 1])]);
    }

    #[tokio::test]
    async fn allows_a_name_overridden_to_loopback_when_the_allow_list_has_it() {
        let ips = resolver("127.0.0.0/8", "Hooks.Test.=127.0.0.1")
            .resolve_checked("HOOKS.test")
            .await
            .expect("allowed");
        assert_eq!(ips, vec![IpAddr::from([127, 0, 0, 1])]);
    }

    #[tokio::test]
    async fn drops_refused_addresses_and_keeps_the_permitted_ones() {
        let ips = resolver("127.0.0.1", "mixed.test=10.0.0.1,mixed.test=127.0.0.1")
            .resolve_checked("mixed.test")
            .await
            .expect("one address permitted");
        assert_eq!(ips, vec![IpAddr::from([127, 0, 0, 1])]);
    }

    #[tokio::test]
    async fn refuses_ipv4_mapped_loopback_returned_by_dns() {
        let result = resolver("false", "mapped.test=::ffff:127.0.0.1")
            .resolve_checked("mapped.test")
            .await;
        assert!(matches!(result, Err(ResolveError::Policy(_))));
    }
}
