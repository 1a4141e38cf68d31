//! Every signature and secret the product makes or checks: signed file URLs,
//! Standard Webhooks signatures, the seed's plaintext `X-Mosaic-Signature`,
//! API keys and their hashes, and generated secrets. Webhook signing and
//! verification live in the `tessera-webhook` crate (re-exported here), so
//! receivers run the very code that signs.

use hmac::{Hmac, Mac};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub use tessera_webhook::verify::{
    DEFAULT_TOLERANCE_SECS, KeyError, SigningKey, VerifyError, WHSEC_PREFIX,
    mosaic_signature_matches, verify_standard,
};

/// Length of the random part of API keys and generated secrets: 43 base62
/// characters carry 256 bits.
const RANDOM_CHARS: usize = 43;

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

/// A fresh Standard Webhooks signing key of 32 random bytes.
pub fn generate_signing_key() -> SigningKey {
    let mut bytes = vec![0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    SigningKey::from_bytes(bytes).expect("32 bytes is a valid key length")
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

    #[test]
    fn generated_signing_keys_are_fresh_whsec_keys() {
        let key = generate_signing_key();
        assert!(key.as_whsec().starts_with(WHSEC_PREFIX));
        assert_eq!(SigningKey::parse(&key.as_whsec()), Ok(key.clone()));
        assert_ne!(key, generate_signing_key());
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
