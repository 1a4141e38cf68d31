//! Turns a failed outbound request into the error class stored with each
//! webhook attempt and download failure, plus a detail line safe to show.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use serde::Serialize;

use super::resolver::{DnsError, PolicyError};

/// Why an outbound request failed, as stored and shown (`error` of an
/// attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The deadline passed (connect, headers or body).
    Timeout,
    /// No connection could be made (refused, unreachable).
    Connect,
    /// The name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// The address policy refused the target (at resolution or redirect).
    RefusedAddress,
    /// The response could not be read or was too large.
    Body,
    /// The server answered with a non-2xx status (or redirected too often).
    Status,
}

impl ErrorClass {
    /// The wire and database spelling (`"refused_address"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Reset => "reset",
            Self::RefusedAddress => "refused_address",
            Self::Body => "body",
            Self::Status => "status",
        }
    }

    /// A short human phrase for messages.
    fn phrase(self) -> &'static str {
        match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Dns => "could not resolve the host",
            Self::Tls => "TLS handshake failed",
            Self::Reset => "the connection was closed early",
            Self::RefusedAddress => "the target address is not allowed",
            Self::Body => "could not read the response",
            Self::Status => "unexpected response status",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a reqwest error by walking its source chain (our resolver and
/// redirect errors, rustls, hyper and IO errors), falling back on reqwest's
/// own flags.
pub fn classify(err: &reqwest::Error) -> ErrorClass {
    if let Some(class) = classify_chain(err) {
        return class;
    }
    if err.is_timeout() {
        ErrorClass::Timeout
    } else if err.is_status() || err.is_redirect() {
        ErrorClass::Status
    } else if err.is_body() || err.is_decode() {
        ErrorClass::Body
    } else {
        ErrorClass::Connect
    }
}

/// One line for the attempt's `error_detail`: the class and the most
/// specific cause. Never contains the URL (reqwest's own message does, and
/// URLs may carry tokens), so it is safe to store and show.
pub fn error_detail(err: &reqwest::Error) -> String {
    if let Some(message) = chain(err).find_map(own_message) {
        return message;
    }
    let phrase = classify(err).phrase();
    match chain(err).last() {
        Some(cause) => format!("{phrase}: {cause}"),
        None => phrase.to_owned(),
    }
}

/// The first class that an error in the chain of `top` determines.
pub(super) fn classify_chain(top: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    chain(top).find_map(direct_class)
}

/// The errors below `top` (not `top` itself: reqwest's message holds the
/// URL). IO errors are looked into with `get_ref`, because
/// `io::Error::source` skips the error they wrap (e.g. rustls' error).
fn chain<'a>(
    top: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(next_in_chain(top), |err| next_in_chain(*err))
}

fn next_in_chain<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    let wrapped = err
        .downcast_ref::<io::Error>()
        .and_then(io::Error::get_ref)
        .map(|inner| inner as &(dyn StdError + 'static));
    wrapped.or_else(|| err.source())
}

fn direct_class(err: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    if let Some(policy) = err.downcast_ref::<PolicyError>() {
        return Some(match policy {
            PolicyError::TooManyRedirects => ErrorClass::Status,
            _ => ErrorClass::RefusedAddress,
        });
    }
    if err.is::<DnsError>() {
        return Some(ErrorClass::Dns);
    }
    if err.is::<rustls::Error>() {
        return Some(ErrorClass::Tls);
    }
    if let Some(hyper) = err.downcast_ref::<hyper::Error>() {
        return hyper_class(hyper);
    }
    err.downcast_ref::<io::Error>().and_then(io_class)
}

fn hyper_class(err: &hyper::Error) -> Option<ErrorClass> {
    if err.is_timeout() {
        Some(ErrorClass::Timeout)
    } else if err.is_incomplete_message() || err.is_canceled() {
        Some(ErrorClass::Reset)
    } else if err.is_parse() {
        // The peer answered, but not with HTTP/1: its response is unreadable.
        Some(ErrorClass::Body)
    } else {
        // Body and IO errors carry their cause further down the chain.
        None
    }
}

fn io_class(err: &io::Error) -> Option<ErrorClass> {
    use io::ErrorKind::*;
    match err.kind() {
        TimedOut => Some(ErrorClass::Timeout),
        ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
        | NetworkDown => Some(ErrorClass::Connect),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Some(ErrorClass::Reset)
        }
        _ => None,
    }
}

/// Messages of our own errors are already written for users.
fn own_message(err: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(policy) = err.downcast_ref::<PolicyError>() {
        return Some(policy.to_string());
    }
    err.downcast_ref::<DnsError>().map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_serialize_in_snake_case() {
        let json = serde_json::to_string(&ErrorClass::RefusedAddress).expect("serializes");
        assert_eq!(json, "\"refused_address\"");
        assert_eq!(ErrorClass::RefusedAddress.as_str(), "refused_address");
    }

    #[test]
    fn a_dns_failure_deep_in_the_chain_is_dns() {
        let dns = DnsError::Lookup {
            host: "nowhere.test".into(),
            source: io::Error::other("no such host"),
        };
        let wrapped = io::Error::other(dns);
        assert_eq!(classify_chain(&Wrapper(wrapped)), Some(ErrorClass::Dns));
    }

    #[test]
    fn an_io_error_wrapping_a_rustls_error_is_tls() {
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("bad record".into()),
        );
        assert_eq!(classify_chain(&Wrapper(tls)), Some(ErrorClass::Tls));
    }

    #[test]
    fn io_kinds_map_to_connect_reset_and_timeout() {
        let class = |kind| classify_chain(&Wrapper(io::Error::from(kind)));
        assert_eq!(
            class(io::ErrorKind::ConnectionRefused),
            Some(ErrorClass::Connect)
        );
        assert_eq!(
            class(io::ErrorKind::ConnectionReset),
            Some(ErrorClass::Reset)
        );
        assert_eq!(class(io::ErrorKind::TimedOut), Some(ErrorClass::Timeout));
        assert_eq!(class(io::ErrorKind::Other), None);
    }

    /// Stands in for reqwest's error: the chain starts below it.
    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("request failed")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
}
