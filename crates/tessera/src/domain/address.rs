//! Address safety for outbound requests: which IP addresses are global, the
//! operator's allow list for non-global ones, and the URL check applied when a
//! webhook or input URL is accepted and again before each request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Longest URL accepted anywhere (webhook destinations, video inputs).
pub const MAX_URL_LEN: usize = 2048;

/// Which non-global addresses are allowed
/// (`TESSERA_ALLOW_PRIVATE_TARGETS` = `"false"` | `"true"` | `"cidr,cidr"`).
///
/// Global addresses are always permitted; the policy only decides about the
/// rest. The default denies every non-global address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Allowed,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Allowed {
    #[default]
    None,
    All,
    Nets(Vec<IpNet>),
}

impl AddressPolicy {
    /// Parses the option value: `""`, `"false"`, `"0"` deny; `"true"`, `"1"`
    /// allow everything; anything else is a comma-separated list of CIDRs or
    /// bare IP addresses.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" => return Ok(Self::deny_private()),
            "true" | "1" | "yes" => return Ok(Self::allow_all()),
            _ => {}
        }
        let nets = s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_net)
            .collect::<Result<Vec<_>, _>>()?;
        if nets.is_empty() {
            return Ok(Self::deny_private());
        }
        Ok(Self {
            allowed: Allowed::Nets(nets),
        })
    }

    /// Every address is permitted (single-machine tests, trusted networks).
    pub fn allow_all() -> Self {
        Self {
            allowed: Allowed::All,
        }
    }

    /// Only global addresses are permitted (the default).
    pub fn deny_private() -> Self {
        Self::default()
    }

    /// Whether a connection to `ip` may be made.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if is_global(ip) {
            return true;
        }
        match &self.allowed {
            Allowed::None => false,
            Allowed::All => true,
            // An IPv4-mapped IPv6 address reaches the IPv4 host, so an allow
            // list written in IPv4 terms covers it too.
            Allowed::Nets(nets) => {
                let canonical = ip.to_canonical();
                nets.iter()
                    .any(|net| net.contains(&ip) || net.contains(&canonical))
            }
        }
    }

    /// One line for the startup log.
    pub fn describe(&self) -> String {
        match &self.allowed {
            Allowed::None => "only public addresses are reachable".to_owned(),
            Allowed::All => {
                "ALL addresses are reachable, including private and loopback".to_owned()
            }
            Allowed::Nets(nets) => {
                let list: Vec<String> = nets.iter().map(IpNet::to_string).collect();
                format!(
                    "public addresses and these non-public ranges are reachable: {}",
                    list.join(", ")
                )
            }
        }
    }
}

/// Is this a public unicast address?
///
/// IPv4: everything except the special-purpose ranges listed in
/// [`V4_NON_GLOBAL`]. IPv6: only `2000::/3`, minus the special ranges inside
/// it ([`V6_NON_GLOBAL_IN_2000`]). Every IPv6 form that embeds or maps an IPv4
/// address (mapped, compatible, NAT64, 6to4, Teredo) is therefore refused,
/// whatever IPv4 address it carries, because the connection may end up there.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_NON_GLOBAL.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => {
            V6_GLOBAL_UNICAST.contains(&v6)
                && !V6_NON_GLOBAL_IN_2000.iter().any(|net| net.contains(&v6))
        }
    }
}

/// Why a URL was refused. Messages are safe to show to the API caller: they
/// never echo the URL (it may carry tokens).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL is empty")]
    Empty,
    #[error("the URL must be absolute, like https://example.com/path")]
    Relative,
    #[error("the URL is not valid: {0}")]
    Invalid(String),
    #[error("only http and https URLs are allowed, not {0}:")]
    UnsupportedScheme(String),
    #[error("the URL has no host")]
    MissingHost,
    #[error("URLs with a user name or password are not allowed")]
    Userinfo,
    #[error(
        "the URL points to a non-public address ({0}: loopback, private, link-local or similar), which is not allowed"
    )]
    RefusedAddress(IpAddr),
}

/// API-time and send-time URL check: http/https only, a host, no userinfo,
/// at most [`MAX_URL_LEN`] characters, and — when the host is an IP literal —
/// the address policy. Names are checked when they are resolved
/// (`net::SafeResolver`), since only then are the addresses known.
///
/// The url crate normalises odd IPv4 spellings (`2130706433`, `0177.0.0.1`,
/// `0x7f.1`) and IPv6 literals, so the check sees the address that would be
/// dialled.
pub fn check_url(raw: &str, policy: &AddressPolicy) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    let url = Url::parse(raw).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => UrlError::Relative,
        e => UrlError::Invalid(e.to_string()),
    })?;
    check_parsed(&url, policy)?;
    Ok(url)
}

/// The unit of per-destination concurrency: `scheme://host:port`, with the
/// scheme's default port filled in, so `https://a.example/x` and
/// `https://a.example:443/y` share one limit.
pub fn destination_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// [`check_url`] for an already parsed URL (e.g. a redirect target).
pub fn check_parsed(url: &Url, policy: &AddressPolicy) -> Result<(), UrlError> {
    if url.as_str().len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(UrlError::UnsupportedScheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Userinfo);
    }
    let ip = match url.host() {
        None => return Err(UrlError::MissingHost),
        Some(Host::Domain("")) => return Err(UrlError::MissingHost),
        Some(Host::Domain(name)) => localhost_address(name),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    match ip {
        Some(ip) if !policy.permits(ip) => Err(UrlError::RefusedAddress(ip)),
        _ => Ok(()),
    }
}

impl fmt::Display for AddressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// `localhost` and `*.localhost` always mean loopback (RFC 6761), so they can
/// be refused before any lookup.
fn localhost_address(name: &str) -> Option<IpAddr> {
    let name = name.trim_end_matches('.');
    (name == "localhost" || name.ends_with(".localhost")).then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn parse_net(part: &str) -> Result<IpNet, String> {
    if let Ok(net) = part.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    part.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{part}` is not an IP address or CIDR range"))
}

/// IPv4 special-purpose ranges (IANA registry), none of which is a public
/// unicast destination.
const V4_NON_GLOBAL: &[Ipv4Net] = &[
    v4([0, 0, 0, 0], 8),       // "this network", incl. unspecified
    v4([10, 0, 0, 0], 8),      // private
    v4([100, 64, 0, 0], 10),   // CGNAT shared space
    v4([127, 0, 0, 0], 8),     // loopback
    v4([169, 254, 0, 0], 16),  // link-local, cloud metadata
    v4([172, 16, 0, 0], 12),   // private
    v4([192, 0, 0, 0], 24),    // IETF protocol assignments
    v4([192, 0, 2, 0], 24),    // TEST-NET-1
    v4([192, 88, 99, 0], 24),  // 6to4 relay anycast
    v4([192, 168, 0, 0], 16),  // private
    v4([198, 18, 0, 0], 15),   // benchmarking
    v4([198, 51, 100, 0], 24), // TEST-NET-2
    v4([203, 0, 113, 0], 24),  // TEST-NET-3
    v4([224, 0, 0, 0], 4),     // multicast
    v4([240, 0, 0, 0], 4),     // reserved, incl. broadcast
];

/// Special ranges inside `2000::/3`. Everything outside `2000::/3` (loopback,
/// unspecified, mapped `::ffff:0:0/96`, compatible `::/96`, NAT64
/// `64:ff9b::/96` and `64:ff9b:1::/48`, discard `100::/64`, ULA `fc00::/7`,
/// link-local `fe80::/10`, site-local `fec0::/10`, multicast `ff00::/8`) is
/// already non-global.
const V6_NON_GLOBAL_IN_2000: &[Ipv6Net] = &[
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // protocol assignments, incl. Teredo 2001::/32
    v6([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
];

/// Global unicast space; the only IPv6 block that can hold public hosts.
const V6_GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

// Const constructors: a bad prefix length in the tables fails the build.
const fn v4(o: [u8; 4], len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(o[0], o[1], o[2], o[3]), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_fill_in_default_ports() {
        let a = Url::parse("https://a.example/x?token=secret").unwrap();
        let b = Url::parse("https://a.example:443/y").unwrap();
        assert_eq!(destination_key(&a), "https://a.example:443");
        assert_eq!(destination_key(&a), destination_key(&b));
        assert_eq!(
            destination_key(&Url::parse("http://127.0.0.1:9000/h").unwrap()),
            "http://127.0.0.1:9000"
        );
    }

    fn loopback_only() -> AddressPolicy {
        AddressPolicy::parse("127.0.0.0/8").expect("valid list")
    }

    /// URLs whose host is a non-public address under the default policy.
    const REFUSED_ADDRESSES: &[(&str, &str)] = &[
        ("http://127.0.0.1/", "loopback"),
        ("http://127.1.2.3:8080/hook", "loopback range"),
        ("http://2130706433/", "decimal loopback"),
        ("http://0177.0.0.1/", "octal loopback"),
        ("http://0x7f.1/", "hex loopback, short form"),
        ("http://0x7f000001/", "hex loopback, one number"),
        ("http://127.0.0.1./", "trailing dot"),
        ("http://localhost:7700/", "localhost name"),
        ("http://api.localhost/", "localhost subdomain"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified, one number"),
        ("http://10.1.2.3/", "private 10/8"),
        ("http://172.16.0.1/", "private 172.16/12"),
        ("http://172.31.255.255/", "private 172.16/12, top"),
        ("http://192.168.1.1/", "private 192.168/16"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://100.127.255.254/", "CGNAT top"),
        ("http://192.0.0.8/", "IETF protocol assignments"),
        ("http://192.0.2.10/", "TEST-NET-1"),
        ("http://198.51.100.7/", "TEST-NET-2"),
        ("http://203.0.113.9/", "TEST-NET-3"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://198.19.255.1/", "benchmarking top"),
        ("http://192.88.99.1/", "6to4 relay"),
        ("http://224.0.0.1/", "multicast"),
        ("http://239.255.255.250/", "multicast top"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://[::1]/", "IPv6 loopback"),
        ("http://[::]/", "IPv6 unspecified"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped loopback"),
        ("http://[::127.0.0.1]/", "IPv4-compatible"),
        ("http://[64:ff9b::7f00:1]/", "NAT64 of loopback"),
        ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
        ("http://[2002:7f00:1::]/", "6to4 of loopback"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
        ("http://[2001:2::1]/", "benchmarking in 2001::/23"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://[3fff::1]/", "documentation, RFC 9637"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[fc00::1]/", "ULA"),
        ("http://[fd12:3456::1]/", "ULA fd"),
        ("http://[100::1]/", "discard"),
        ("http://[ff02::1]/", "multicast"),
    ];

    /// URLs refused for their shape, whatever the policy.
    const REFUSED_SHAPES: &[(&str, &str)] = &[
        ("http://[fe80::1%25eth0]/", "link-local with zone"),
        ("http://user:pass@example.com/", "userinfo"),
        ("https://user@example.com/", "user name only"),
        ("file:///etc/passwd", "file scheme"),
        ("ftp://example.com/video.mp4", "ftp scheme"),
        ("gopher://example.com:70/_x", "gopher scheme"),
        ("javascript:alert(1)", "javascript scheme"),
        ("http://", "missing host"),
        ("http://:80/", "empty host"),
        ("/relative/path", "relative URL"),
        ("not a url", "garbage"),
    ];

    const ACCEPTED: &[&str] = &[
        "http://8.8.8.8/",
        "https://1.1.1.1:8443/hook?token=x",
        "http://[2606:4700:4700::1111]/",
        "https://[2a00:1450:4001:82b::200e]/hook",
        "https://example.com/hook",
        "http://hooks.example.org:9000/a/b?c=d",
        "https://172.32.0.1/",
        "https://100.128.0.1/",
        "http://192.0.3.1/",
    ];

    #[test]
    fn refuses_every_non_public_address_however_it_is_spelled() {
        let policy = AddressPolicy::deny_private();
        for (url, why) in REFUSED_ADDRESSES {
            let result = check_url(url, &policy);
            assert!(
                matches!(result, Err(UrlError::RefusedAddress(_))),
                "{why}: {url} gave {result:?}"
            );
        }
    }

    #[test]
    fn refuses_malformed_urls_even_when_every_address_is_allowed() {
        let policy = AddressPolicy::allow_all();
        for (url, why) in REFUSED_SHAPES {
            assert!(
                check_url(url, &policy).is_err(),
                "{why}: {url} was accepted"
            );
        }
    }

    #[test]
    fn accepts_public_http_urls() {
        let policy = AddressPolicy::deny_private();
        for url in ACCEPTED {
            check_url(url, &policy).unwrap_or_else(|e| panic!("{url} refused: {e}"));
        }
    }

    #[test]
    fn reports_the_reason_for_each_kind_of_refusal() {
        let policy = AddressPolicy::deny_private();
        let check = |url| check_url(url, &policy).expect_err("refused");
        assert_eq!(
            check("ftp://example.com/"),
            UrlError::UnsupportedScheme("ftp".into())
        );
        assert_eq!(check("http://u:p@example.com/"), UrlError::Userinfo);
        assert!(matches!(check("http://"), UrlError::Invalid(_)));
        assert_eq!(
            check("http://0x7f.1/"),
            UrlError::RefusedAddress("127.0.0.1".parse().expect("ip"))
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check(&long), UrlError::TooLong);
    }

    #[test]
    fn error_messages_never_echo_the_url() {
        let policy = AddressPolicy::deny_private();
        for url in [
            "http://secret-token@example.com/",
            "http://10.0.0.1/?key=secret-token",
        ] {
            let message = check_url(url, &policy).expect_err("refused").to_string();
            assert!(!message.contains("secret-token"), "{message}");
        }
    }

    #[test]
    fn an_allow_list_opens_loopback_but_not_other_private_ranges() {
        let policy = loopback_only();
        check_url("http://127.0.0.1:7700/hook", &policy).expect("loopback allowed");
        check_url("http://2130706433/", &policy).expect("decimal loopback allowed");
        check_url("http://localhost/", &policy).expect("localhost allowed");
        assert!(check_url("http://10.0.0.1/", &policy).is_err());
        assert!(check_url("http://169.254.169.254/", &policy).is_err());
        assert!(check_url("http://[::1]/", &policy).is_err());
        assert!(policy.permits("::ffff:127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn policy_parses_booleans_cidrs_and_bare_addresses() {
        let private: IpAddr = "10.0.0.1".parse().expect("ip");
        let loopback6: IpAddr = "::1".parse().expect("ip");
        for off in ["", "false", "0", " FALSE "] {
            assert!(!AddressPolicy::parse(off).expect("valid").permits(private));
        }
        for on in ["true", "1", "TRUE"] {
            assert!(AddressPolicy::parse(on).expect("valid").permits(private));
        }
        let list = AddressPolicy::parse("127.0.0.0/8, ::1, 10.1.2.3/8").expect("valid");
        assert!(list.permits(loopback6));
        assert!(list.permits(private), "10.1.2.3/8 is truncated to 10/8");
        assert!(!list.permits("192.168.0.1".parse().expect("ip")));
        assert!(AddressPolicy::parse("127.0.0.0/33").is_err());
        assert!(AddressPolicy::parse("yes-please").is_err());
    }

    #[test]
    fn global_addresses_are_permitted_under_every_policy() {
        let public: IpAddr = "8.8.8.8".parse().expect("ip");
        assert!(AddressPolicy::deny_private().permits(public));
        assert!(loopback_only().permits(public));
    }

    #[test]
    fn describe_names_the_allowed_ranges() {
        assert!(loopback_only().describe().contains("127.0.0.0/8"));
        assert!(AddressPolicy::allow_all().describe().contains("ALL"));
        assert!(
            AddressPolicy::deny_private()
                .describe()
                .contains("only public")
        );
    }
}
