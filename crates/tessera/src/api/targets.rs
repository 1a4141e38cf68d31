//! API-time checks of the URLs a client gives us (video URLs, callback URLs).
//! The same rules run again at send time on the address actually dialled;
//! checking here turns an obviously unsafe URL into a 400 at once.

use std::time::Duration;

use crate::domain::address::AddressPolicy;
use crate::domain::address::check_url;
use crate::net::{NetConfig, ResolveError, SafeResolver};

/// How long an API call waits for DNS before accepting the URL and leaving
/// the decision to send time.
const API_DNS_WAIT: Duration = Duration::from_secs(2);

/// Parse and check one outbound URL. A host that resolves only to refused
/// addresses is refused; a host that does not resolve (yet) is accepted, since
/// DNS failures are transient and every send checks again.
pub async fn check_target(
    raw: &str,
    policy: &AddressPolicy,
    net: &NetConfig,
) -> Result<url::Url, String> {
    let url = check_url(raw, policy).map_err(|e| e.to_string())?;
    if let Some(url::Host::Domain(host)) = url.host() {
        let resolver = SafeResolver::new(net);
        if let Ok(Err(ResolveError::Policy(e))) =
            tokio::time::timeout(API_DNS_WAIT, resolver.resolve_checked(host)).await
        {
            return Err(e.to_string());
        }
    }
    Ok(url)
}
