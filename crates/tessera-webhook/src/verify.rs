//! Signature verification for both schemes Tessera signs webhooks with.
//!
//! - [`mosaic_signature_matches`]: the hosted Mosaic service's scheme, where
//!   `X-Mosaic-Signature` carries the account's webhook secret verbatim.
//! - [`Verifier`]: Standard Webhooks (<https://www.standardwebhooks.com>),
//!   where `webhook-signature` holds one or more `v1,<base64>` HMAC-SHA256
//!   signatures of `"{webhook-id}.{webhook-timestamp}.{body}"` under a
//!   `whsec_…` key, and `webhook-timestamp` must be recent.
//!
//! Every comparison of secret material runs in constant time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of Standard Webhooks signing keys.
pub const WHSEC_PREFIX: &str = "whsec_";
/// Default replay window for Standard Webhooks timestamps: five minutes each
/// way, as in the reference libraries.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;
/// Header names, lowercase (HTTP header names are case-insensitive).
pub const MOSAIC_SIGNATURE_HEADER: &str = "x-mosaic-signature";
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Most `webhook-signature` entries looked at.
const MAX_SIGNATURES: usize = 16;

/// The seed's plaintext scheme: `X-Mosaic-Signature` carries the account's
/// webhook secret verbatim. Both sides are hashed before the constant-time
/// comparison, so neither the content nor the length of the secret leaks
/// through timing.
pub fn mosaic_signature_matches(expected_secret: &str, header_value: &str) -> bool {
    let expected = Sha256::digest(expected_secret.as_bytes());
    let given = Sha256::digest(header_value.as_bytes());
    bool::from(expected.ct_eq(&given)) && !expected_secret.is_empty()
}

/// A Standard Webhooks signing key: `whsec_` followed by the base64 of 24 to
/// 64 bytes.
///
/// `Debug` never shows the key bytes, so the type can sit in logged structs.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Parses `whsec_<base64>`; the prefix is optional, as in the reference
    /// libraries, so a key pasted without it still works.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let encoded = s.trim();
        let encoded = encoded.strip_prefix(WHSEC_PREFIX).unwrap_or(encoded);
        let bytes = STANDARD.decode(encoded).map_err(|_| KeyError::NotBase64)?;
        Self::from_bytes(bytes)
    }

    /// A key from raw bytes (24 to 64 of them).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if KEY_BYTES.contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(KeyError::BadLength(bytes.len()))
        }
    }

    /// The key in its shareable `whsec_…` form.
    pub fn as_whsec(&self) -> String {
        format!("{WHSEC_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(msg_id, timestamp, body)))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length; `new_from_slice` only fails for
        // MACs with a fixed key size, which HMAC is not.
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// Why a signing key string was refused (the key itself is never repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    NotBase64,
    BadLength(usize),
    /// `Verifier::with_keys` was given no key: it would refuse everything.
    NoKeys,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBase64 => {
                f.write_str("the signing key is not valid base64 after the whsec_ prefix")
            }
            Self::BadLength(n) => {
                write!(f, "the signing key must decode to 24 to 64 bytes, not {n}")
            }
            Self::NoKeys => f.write_str("no signing key was given"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a webhook did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header is absent (its lowercase name).
    MissingHeader(&'static str),
    InvalidTimestamp,
    TimestampTooOld,
    TimestampTooNew,
    NoSignature,
    NoMatch,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "the {name} header is missing"),
            Self::InvalidTimestamp => {
                f.write_str("the webhook-timestamp header is not a Unix timestamp")
            }
            Self::TimestampTooOld => f.write_str("the webhook-timestamp is too old"),
            Self::TimestampTooNew => f.write_str("the webhook-timestamp is in the future"),
            Self::NoSignature => f.write_str("the webhook-signature header holds no v1 signature"),
            Self::NoMatch => f.write_str("no signature matches"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a `webhook-signature` header (space-separated `v1,<base64>`
/// entries; any match under any of `keys` passes) and checks that the
/// timestamp is within `tolerance_secs` of `now_unix`.
pub fn verify_standard(
    keys: &[SigningKey],
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    if timestamp < now_unix.saturating_sub(tolerance_secs) {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp > now_unix.saturating_add(tolerance_secs) {
        return Err(VerifyError::TimestampTooNew);
    }
    // A sender signs with at most a few keys at once: entries beyond the
    // first few are ignored, so a hostile header cannot buy CPU time.
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .take(MAX_SIGNATURES)
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| STANDARD.decode(sig).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    // Every key is checked against every candidate, so the time taken does
    // not depend on which one matched.
    let mut matched = subtle::Choice::from(0);
    for key in keys {
        let expected = key.mac(msg_id, timestamp, body);
        for given in &candidates {
            matched |= expected.as_slice().ct_eq(given);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// Verifies Standard Webhooks signatures under one or more keys (several
/// during a key rotation, when a delivery may be signed by either).
///
/// ```
/// use tessera_webhook::Verifier;
///
/// let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// let body = br#"{"test": 2432232314}"#;
/// let headers = [
///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("webhook-timestamp", "1614265330"),
///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
/// assert!(verifier.verify_at(header, body, 1_614_265_330).is_ok());
/// assert!(verifier.verify_at(header, b"{}", 1_614_265_330).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Vec<SigningKey>,
    tolerance_secs: i64,
}

impl Verifier {
    /// A verifier for one `whsec_…` key.
    pub fn new(key: &str) -> Result<Self, KeyError> {
        Self::with_keys([key])
    }

    /// A verifier accepting a signature under any of `keys` (the current key
    /// and the previous one during a rotation's grace period).
    pub fn with_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Self, KeyError> {
        let keys = keys
            .into_iter()
            .map(SigningKey::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Self {
            keys,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        })
    }

    /// Changes the accepted clock difference (default five minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Verifies a delivery now. `header` looks a header up by its lowercase
    /// name (adapt it to your HTTP library; names are case-insensitive).
    pub fn verify<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(header, body, now)
    }

    /// Verifies a delivery as of `now_unix` (seconds since the epoch).
    pub fn verify_at<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), VerifyError> {
        let required = |name: &'static str| header(name).ok_or(VerifyError::MissingHeader(name));
        let id = required(WEBHOOK_ID_HEADER)?;
        let timestamp = required(WEBHOOK_TIMESTAMP_HEADER)?;
        let signature = required(WEBHOOK_SIGNATURE_HEADER)?;
        verify_standard(
            &self.keys,
            id,
            timestamp,
            signature,
            body,
            now_unix,
            self.tolerance_secs,
        )
    }

    /// Verifies a delivery now and parses its payload.
    pub fn verify_and_parse<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<crate::WebhookPayload, Error> {
        self.verify(header, body).map_err(Error::Verify)?;
        crate::parse(body).map_err(Error::Parse)
    }
}

/// A delivery that failed verification or did not parse.
#[derive(Debug)]
pub enum Error {
    Verify(VerifyError),
    Parse(serde_json::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verify(e) => write!(f, "signature check failed: {e}"),
            Self::Parse(e) => write!(f, "payload did not parse: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Verify(e) => Some(e),
            Self::Parse(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks test vector (from the reference
    // libraries' test suites).
    const VECTOR_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_key() -> SigningKey {
        SigningKey::parse(VECTOR_KEY).expect("valid key")
    }

    fn other_key() -> SigningKey {
        SigningKey::from_bytes(vec![7; 32]).expect("valid key")
    }

    fn verify(keys: &[SigningKey], sig: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
        let ts = VECTOR_TS.to_string();
        verify_standard(keys, VECTOR_ID, &ts, sig, body, now, DEFAULT_TOLERANCE_SECS)
    }

    fn headers<'a>(
        id: &'a str,
        ts: &'a str,
        sig: &'a str,
    ) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| match name {
            WEBHOOK_ID_HEADER => Some(id),
            WEBHOOK_TIMESTAMP_HEADER => Some(ts),
            WEBHOOK_SIGNATURE_HEADER => Some(sig),
            _ => None,
        }
    }

    #[test]
    fn signing_reproduces_the_standard_webhooks_test_vector() {
        assert_eq!(
            vector_key().sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY),
            VECTOR_SIG
        );
    }

    #[test]
    fn the_test_vector_verifies() {
        assert_eq!(
            verify(&[vector_key()], VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_fails() {
        let body = br#"{"test": 2432232315}"#;
        let result = verify(&[vector_key()], VECTOR_SIG, body, VECTOR_TS);
        assert_eq!(result, Err(VerifyError::NoMatch));
    }

    #[test]
    fn a_wrong_key_fails() {
        let result = verify(&[other_key()], VECTOR_SIG, VECTOR_BODY, VECTOR_TS);
        assert_eq!(result, Err(VerifyError::NoMatch));
    }

    #[test]
    fn a_tampered_id_or_timestamp_fails() {
        let keys = [vector_key()];
        let ts = VECTOR_TS.to_string();
        let other_id = verify_standard(
            &keys,
            "msg_other",
            &ts,
            VECTOR_SIG,
            VECTOR_BODY,
            VECTOR_TS,
            300,
        );
        assert_eq!(other_id, Err(VerifyError::NoMatch));
        let shifted = (VECTOR_TS + 1).to_string();
        let other_ts = verify_standard(
            &keys,
            VECTOR_ID,
            &shifted,
            VECTOR_SIG,
            VECTOR_BODY,
            VECTOR_TS,
            300,
        );
        assert_eq!(other_ts, Err(VerifyError::NoMatch));
    }

    #[test]
    fn a_stale_or_future_timestamp_fails_even_with_a_good_signature() {
        let keys = [vector_key()];
        let late = VECTOR_TS + DEFAULT_TOLERANCE_SECS + 1;
        let early = VECTOR_TS - DEFAULT_TOLERANCE_SECS - 1;
        assert_eq!(
            verify(&keys, VECTOR_SIG, VECTOR_BODY, late),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            verify(&keys, VECTOR_SIG, VECTOR_BODY, early),
            Err(VerifyError::TimestampTooNew)
        );
        assert_eq!(verify(&keys, VECTOR_SIG, VECTOR_BODY, late - 1), Ok(()));
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let header = format!("v1,bm9wZQ== v2,abc {VECTOR_SIG}");
        assert_eq!(
            verify(&[vector_key()], &header, VECTOR_BODY, VECTOR_TS),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_keys_may_match_during_rotation() {
        let keys = [other_key(), vector_key()];
        assert_eq!(verify(&keys, VECTOR_SIG, VECTOR_BODY, VECTOR_TS), Ok(()));
    }

    #[test]
    fn headers_without_a_v1_signature_or_with_a_bad_timestamp_fail() {
        let keys = [vector_key()];
        assert_eq!(
            verify(&keys, "v2,abc", VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::NoSignature)
        );
        let result = verify_standard(
            &keys,
            VECTOR_ID,
            "soon",
            VECTOR_SIG,
            VECTOR_BODY,
            VECTOR_TS,
            300,
        );
        assert_eq!(result, Err(VerifyError::InvalidTimestamp));
    }

    #[test]
    fn the_verifier_reads_headers_and_honours_rotation_and_tolerance() {
        let other = other_key().as_whsec();
        let verifier = Verifier::with_keys([other.as_str(), VECTOR_KEY]).expect("keys");
        let ts = VECTOR_TS.to_string();
        let good = headers(VECTOR_ID, &ts, VECTOR_SIG);
        assert_eq!(verifier.verify_at(&good, VECTOR_BODY, VECTOR_TS), Ok(()));
        assert_eq!(
            verifier.verify_at(&good, VECTOR_BODY, VECTOR_TS + 301),
            Err(VerifyError::TimestampTooOld)
        );
        let strict = verifier.clone().tolerance(Duration::from_secs(10));
        assert_eq!(
            strict.verify_at(&good, VECTOR_BODY, VECTOR_TS + 11),
            Err(VerifyError::TimestampTooOld)
        );
        let only_other = Verifier::new(&other).expect("key");
        assert_eq!(
            only_other.verify_at(&good, VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::NoMatch)
        );
        // Verifying "now" refuses the 2021 vector as stale.
        assert_eq!(
            verifier.verify(&good, VECTOR_BODY),
            Err(VerifyError::TimestampTooOld)
        );
    }

    #[test]
    fn the_verifier_names_a_missing_header() {
        let verifier = Verifier::new(VECTOR_KEY).expect("key");
        let none = |_: &str| None;
        assert_eq!(
            verifier.verify_at(none, VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            VerifyError::MissingHeader("webhook-id").to_string(),
            "the webhook-id header is missing"
        );
    }

    #[test]
    fn keys_round_trip_through_whsec_and_parse_without_prefix() {
        let key = other_key();
        let text = key.as_whsec();
        assert!(text.starts_with(WHSEC_PREFIX));
        assert_eq!(SigningKey::parse(&text), Ok(key.clone()));
        assert_eq!(SigningKey::parse(&text[WHSEC_PREFIX.len()..]), Ok(key));
    }

    #[test]
    fn a_verifier_needs_at_least_one_key() {
        assert!(matches!(
            Verifier::with_keys(std::iter::empty::<&str>()),
            Err(KeyError::NoKeys)
        ));
    }

    #[test]
    fn keys_of_the_wrong_size_or_encoding_are_refused() {
        assert_eq!(SigningKey::parse("whsec_AAAA"), Err(KeyError::BadLength(3)));
        assert_eq!(
            SigningKey::parse("whsec_not base64!"),
            Err(KeyError::NotBase64)
        );
        assert!(Verifier::new("whsec_AAAA").is_err());
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", vector_key()), "SigningKey(***)");
        let verifier = Verifier::new(VECTOR_KEY).expect("key");
        assert!(!format!("{verifier:?}").contains("MfKQ9r8"));
    }

    #[test]
    fn mosaic_signature_is_an_exact_comparison() {
        assert!(mosaic_signature_matches("s3cret", "s3cret"));
        assert!(!mosaic_signature_matches("s3cret", "s3cre"));
        assert!(!mosaic_signature_matches("s3cret", "s3cret "));
        assert!(!mosaic_signature_matches("s3cret", "S3CRET"));
        assert!(!mosaic_signature_matches("s3cret", ""));
        // An unset secret matches nothing, not even an empty header.
        assert!(!mosaic_signature_matches("", ""));
    }
}
