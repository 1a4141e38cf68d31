//! Every signature and secret the product makes or checks: signed file URLs,
//! Standard Webhooks signatures, the seed's plaintext `X-Mosaic-Signature`,
//! API keys and their hashes, and generated secrets.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of Standard Webhooks signing keys.
pub const WHSEC_PREFIX: &str = "whsec_";
/// Default replay window for Standard Webhooks timestamps.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;
/// Length of the random part of API keys and generated secrets: 43 base62
/// characters carry 256 bits.
const RANDOM_CHARS: usize = 43;
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Signature of a file URL: lowercase hex of
/// HMAC-SHA256(server_secret, "{key}\n{expires}").
pub fn file_signature(secret: &[u8], key: &str, expires_unix: i64) -> String {
    hex::encode(file_mac(secret, key, expires_unix))
}

/// Checks a file URL signature in constant time; false once `expires_unix`
/// has passed.
pub fn verify_file_signature(
    secret: &[u8],
    key: &str,
    expires_unix: i64,
    signature: &str,
    now_unix: i64,
) -> bool {
    if now_unix > expires_unix {
        return false;
    }
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    bool::from(file_mac(secret, key, expires_unix).ct_eq(&given))
}

/// A Standard Webhooks signing key (<https://www.standardwebhooks.com>):
/// `whsec_` followed by the base64 of 24 to 64 random bytes.
///
/// `Debug` never shows the key bytes, so the type can sit in logged structs.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

/// Why a signing key string was refused (the key itself is never repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key is not valid base64 after the whsec_ prefix")]
    NotBase64,
    #[error("the signing key must decode to 24 to 64 bytes, not {0}")]
    BadLength(usize),
}

impl SigningKey {
    /// A fresh key of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rng().fill(&mut bytes[..]);
        Self(bytes)
    }

    /// Parses `whsec_<base64>`; the prefix is optional, as in the reference
    /// libraries, so a key pasted without it still works.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let encoded = s.trim();
        let encoded = encoded.strip_prefix(WHSEC_PREFIX).unwrap_or(encoded);
        let bytes = STANDARD.decode(encoded).map_err(|_| KeyError::NotBase64)?;
        if !KEY_BYTES.contains(&bytes.len()) {
            return Err(KeyError::BadLength(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The key in its shareable `whsec_…` form.
    pub fn as_whsec(&self) -> String {
        format!("{WHSEC_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(msg_id, timestamp, body)))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = new_mac(&self.0);
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// Why a Standard Webhooks signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-timestamp header is not a Unix timestamp")]
    InvalidTimestamp,
    #[error("the webhook-timestamp is too old")]
    TimestampTooOld,
    #[error("the webhook-timestamp is in the future")]
    TimestampTooNew,
    #[error("the webhook-signature header holds no v1 signature")]
    NoSignature,
    #[error("no signature matches")]
    NoMatch,
}

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
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| STANDARD.decode(sig).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let matched = keys.iter().any(|key| {
        let expected = key.mac(msg_id, timestamp, body);
        candidates
            .iter()
            .any(|given| bool::from(expected.ct_eq(given)))
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// The seed's plaintext scheme: the header carries the account's webhook
/// secret verbatim. Compared in constant time.
pub fn mosaic_signature_matches(expected_secret: &str, header_value: &str) -> bool {
    bool::from(expected_secret.as_bytes().ct_eq(header_value.as_bytes()))
}

/// A new API key: `mk_` followed by 43 random base62 characters (256 bits).
pub fn generate_api_key() -> String {
    generate_secret("mk_")
}

/// SHA-256 hex of an API key. Keys are high-entropy random strings, so a
/// fast hash is enough: there is nothing to brute-force.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `prefix` followed by 43 random base62 characters (256 bits); used for
/// webhook secrets (`generate_secret("")`) and server secrets.
pub fn generate_secret(prefix: &str) -> String {
    let random: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(RANDOM_CHARS)
        .map(char::from)
        .collect();
    format!("{prefix}{random}")
}

fn file_mac(secret: &[u8], key: &str, expires_unix: i64) -> Vec<u8> {
    let mut mac = new_mac(secret);
    mac.update(format!("{key}\n{expires_unix}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` only fails for MACs
    // with a fixed key size, which HMAC is not.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// A secret as shown back to its owner: the last four characters of a long
/// secret, nothing of a short one.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 16 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("••••{tail}")
    } else {
        "••••".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks test vector.
    const VECTOR_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_key() -> SigningKey {
        SigningKey::parse(VECTOR_KEY).expect("valid key")
    }

    fn verify(keys: &[SigningKey], sig: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
        let ts = VECTOR_TS.to_string();
        verify_standard(keys, VECTOR_ID, &ts, sig, body, now, DEFAULT_TOLERANCE_SECS)
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
        let result = verify(
            &[SigningKey::generate()],
            VECTOR_SIG,
            VECTOR_BODY,
            VECTOR_TS,
        );
        assert_eq!(result, Err(VerifyError::NoMatch));
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
        let keys = [SigningKey::generate(), vector_key()];
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
    fn keys_round_trip_through_whsec_and_parse_without_prefix() {
        let key = SigningKey::generate();
        let text = key.as_whsec();
        assert!(text.starts_with(WHSEC_PREFIX));
        assert_eq!(SigningKey::parse(&text), Ok(key.clone()));
        assert_eq!(SigningKey::parse(&text[WHSEC_PREFIX.len()..]), Ok(key));
    }

    #[test]
    fn keys_of_the_wrong_size_or_encoding_are_refused() {
        assert_eq!(SigningKey::parse("whsec_AAAA"), Err(KeyError::BadLength(3)));
        assert_eq!(
            SigningKey::parse("whsec_not base64!"),
            Err(KeyError::NotBase64)
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", vector_key()), "SigningKey(***)");
    }

    #[test]
    fn file_signatures_verify_until_they_expire() {
        let secret = b"server secret";
        let sig = file_signature(secret, "out/a.mp4", 1_000);
        assert_eq!(sig.len(), 64);
        assert!(
            sig.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(verify_file_signature(
            secret,
            "out/a.mp4",
            1_000,
            &sig,
            1_000
        ));
        assert!(!verify_file_signature(
            secret,
            "out/a.mp4",
            1_000,
            &sig,
            1_001
        ));
    }

    #[test]
    fn file_signatures_bind_the_key_the_expiry_and_the_secret() {
        let sig = file_signature(b"s", "out/a.mp4", 1_000);
        assert!(!verify_file_signature(b"s", "out/b.mp4", 1_000, &sig, 0));
        assert!(!verify_file_signature(b"s", "out/a.mp4", 2_000, &sig, 0));
        assert!(!verify_file_signature(b"t", "out/a.mp4", 1_000, &sig, 0));
        assert!(!verify_file_signature(b"s", "out/a.mp4", 1_000, "zz", 0));
    }

    #[test]
    fn mosaic_signature_is_an_exact_comparison() {
        assert!(mosaic_signature_matches("s3cret", "s3cret"));
        assert!(!mosaic_signature_matches("s3cret", "s3cre"));
        assert!(!mosaic_signature_matches("s3cret", "S3CRET"));
        assert!(!mosaic_signature_matches("s3cret", ""));
    }

    #[test]
    fn api_keys_are_random_prefixed_and_hashed_as_sha256_hex() {
        let key = generate_api_key();
        assert!(key.starts_with("mk_"));
        assert_eq!(key.len(), 3 + RANDOM_CHARS);
        assert!(key[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(key, generate_api_key());
        let hash = hash_api_key(&key);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, hash_api_key(&key));
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_secrets_carry_the_prefix_or_none() {
        assert!(generate_secret("srv_").starts_with("srv_"));
        assert_eq!(generate_secret("").len(), RANDOM_CHARS);
    }

    #[test]
    fn masked_secrets_show_at_most_a_short_tail() {
        assert_eq!(mask_secret("short"), "••••");
        assert_eq!(mask_secret("0123456789abcdefWXYZ"), "••••WXYZ");
    }
}
