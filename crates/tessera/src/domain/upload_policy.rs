//! The signed upload policy of Tessera's own upload URL: what
//! `get_upload_url` hands out as `fields`, and what the upload endpoint checks
//! before it reads a byte of the file.
//!
//! The shape follows S3's browser POST uploads, so one client works against
//! both: the client posts `multipart/form-data` with every field of `fields`
//! first and the file part (`file`) last. The fields are
//! - `key`: the object key the file is stored under,
//! - `policy`: base64 of a JSON document `{expiration, video_id, key,
//!   max_bytes}`,
//! - `x-tessera-signature`: lowercase hex of HMAC-SHA256(server secret,
//!   "tessera-upload-policy\n" + policy) — the prefix keeps these signatures
//!   apart from signed file URLs made with the same secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::ids::VideoId;

/// The form field names, in the order they are handed out.
pub const KEY_FIELD: &str = "key";
pub const POLICY_FIELD: &str = "policy";
pub const SIGNATURE_FIELD: &str = "x-tessera-signature";
/// The name of the file part, which comes after every field.
pub const FILE_FIELD: &str = "file";

/// What an upload URL allows: one file, under one key, up to a size, until a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadPolicy {
    /// RFC 3339 UTC time after which the upload is refused.
    pub expiration: String,
    pub video_id: VideoId,
    pub key: String,
    pub max_bytes: u64,
}

/// Why a posted policy is refused (all answered with 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the upload form lacks the field {0:?} (post every field of `fields`, then `file`)")]
    Missing(&'static str),
    #[error("the upload policy's signature does not match: the fields were changed")]
    Tampered,
    #[error("the upload policy is malformed")]
    Malformed,
    #[error("the upload policy expired at {0}; ask for a new upload URL")]
    Expired(String),
}

impl UploadPolicy {
    /// The form fields a client posts back (in order).
    pub fn fields(&self, secret: &[u8]) -> Vec<(&'static str, String)> {
        let json = serde_json::to_vec(self).expect("a policy serializes");
        let policy = BASE64.encode(json);
        let signature = hex::encode(mac(secret, &policy));
        vec![
            (KEY_FIELD, self.key.clone()),
            (POLICY_FIELD, policy),
            (SIGNATURE_FIELD, signature),
        ]
    }

    /// Check posted fields: signature first (in constant time), then that
    /// `key` is the policy's, then the expiry against `now_unix`.
    pub fn verify(
        key: Option<&str>,
        policy: Option<&str>,
        signature: Option<&str>,
        secret: &[u8],
        now_unix: i64,
    ) -> Result<UploadPolicy, PolicyError> {
        let key = key.ok_or(PolicyError::Missing(KEY_FIELD))?;
        let policy = policy.ok_or(PolicyError::Missing(POLICY_FIELD))?;
        let signature = signature.ok_or(PolicyError::Missing(SIGNATURE_FIELD))?;
        let given = hex::decode(signature).map_err(|_| PolicyError::Tampered)?;
        if !bool::from(mac(secret, policy).ct_eq(&given)) {
            return Err(PolicyError::Tampered);
        }
        let json = BASE64.decode(policy).map_err(|_| PolicyError::Malformed)?;
        let parsed: UploadPolicy =
            serde_json::from_slice(&json).map_err(|_| PolicyError::Malformed)?;
        if parsed.key != key {
            return Err(PolicyError::Tampered);
        }
        let expires = chrono::DateTime::parse_from_rfc3339(&parsed.expiration)
            .map_err(|_| PolicyError::Malformed)?;
        if now_unix >= expires.timestamp() {
            return Err(PolicyError::Expired(parsed.expiration));
        }
        Ok(parsed)
    }
}

fn mac(secret: &[u8], policy: &str) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC accepts keys of any length");
    mac.update(b"tessera-upload-policy\n");
    mac.update(policy.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"server secret";

    fn policy() -> UploadPolicy {
        UploadPolicy {
            expiration: "2026-12-04T20:00:00Z".into(),
            video_id: VideoId::new(),
            key: "uploads/u/v/video".into(),
            max_bytes: 5_000_000_000,
        }
    }

    fn field<'a>(fields: &'a [(&str, String)], name: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn verify(fields: &[(&str, String)], now: i64) -> Result<UploadPolicy, PolicyError> {
        UploadPolicy::verify(
            field(fields, KEY_FIELD),
            field(fields, POLICY_FIELD),
            field(fields, SIGNATURE_FIELD),
            SECRET,
            now,
        )
    }

    const BEFORE: i64 = 1_796_400_000; // 2026-12-04T16:00:00Z
    const AFTER: i64 = 1_796_414_400; // 2026-12-04T20:00:00Z

    #[test]
    fn issued_fields_verify_until_the_expiration() {
        let p = policy();
        let fields = p.fields(SECRET);
        let names: Vec<_> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [KEY_FIELD, POLICY_FIELD, SIGNATURE_FIELD]);
        assert_eq!(verify(&fields, BEFORE).unwrap(), p);
        assert_eq!(
            verify(&fields, AFTER).unwrap_err(),
            PolicyError::Expired("2026-12-04T20:00:00Z".into())
        );
    }

    #[test]
    fn any_change_to_the_fields_is_refused() {
        let fields = policy().fields(SECRET);
        let with = |name: &str, value: String| {
            let mut f = fields.clone();
            f.iter_mut().find(|(n, _)| *n == name).unwrap().1 = value;
            f
        };
        // Another key than the signed one.
        let other_key = with(KEY_FIELD, "uploads/u/other/video".into());
        assert_eq!(verify(&other_key, BEFORE), Err(PolicyError::Tampered));
        // A bigger size limit or a later expiry, re-encoded.
        let mut bigger = policy();
        bigger.max_bytes = 6_000_000_000;
        bigger.expiration = "2027-01-01T00:00:00Z".into();
        let forged = bigger.fields(b"guessed secret");
        let swapped = with(POLICY_FIELD, field(&forged, POLICY_FIELD).unwrap().into());
        assert_eq!(verify(&swapped, BEFORE), Err(PolicyError::Tampered));
        assert_eq!(verify(&forged, BEFORE), Err(PolicyError::Tampered));
        // A signature that is not hex, or a flipped digit.
        let sig = field(&fields, SIGNATURE_FIELD).unwrap();
        assert_eq!(
            verify(&with(SIGNATURE_FIELD, "zz".into()), BEFORE),
            Err(PolicyError::Tampered)
        );
        let flipped = format!(
            "{}{}",
            if sig.starts_with('0') { '1' } else { '0' },
            &sig[1..]
        );
        assert_eq!(
            verify(&with(SIGNATURE_FIELD, flipped), BEFORE),
            Err(PolicyError::Tampered)
        );
        // A file-URL signature over the same text is not a policy signature.
        let policy_text = field(&fields, POLICY_FIELD).unwrap();
        let file_sig = crate::domain::signing::file_signature(SECRET, policy_text, 0);
        assert_eq!(
            verify(&with(SIGNATURE_FIELD, file_sig), BEFORE),
            Err(PolicyError::Tampered)
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let fields = policy().fields(SECRET);
        for name in [KEY_FIELD, POLICY_FIELD, SIGNATURE_FIELD] {
            let without: Vec<_> = fields.iter().filter(|(n, _)| *n != name).cloned().collect();
            assert!(matches!(verify(&without, BEFORE), Err(PolicyError::Missing(n)) if n == name));
        }
    }
}
