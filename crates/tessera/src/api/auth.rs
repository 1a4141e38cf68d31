//! API key authentication: `Authorization: Bearer mk_…` or `X-API-Key: mk_…`.
//! Keys are looked up by their SHA-256 hash; the key itself is never stored
//! or logged.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::domain::ids::{ApiKeyId, UserId};
use crate::domain::signing::hash_api_key;
use crate::store::ApiKeyRecord;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Auth {
    pub user_id: UserId,
    pub api_key_id: ApiKeyId,
    pub key: ApiKeyRecord,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(&parts.headers)?;
        let now = chrono::Utc::now().timestamp_millis();
        match state.store.authenticate(&hash_api_key(&key), now).await? {
            Some(record) => Ok(Auth {
                user_id: record.user_id,
                api_key_id: record.id,
                key: record,
            }),
            None => Err(ApiError::unauthorized("the API key is not valid")),
        }
    }
}

/// The one key the request presents. Both headers may be sent (some clients
/// do), but then they must name the same key.
fn presented_key(headers: &HeaderMap) -> Result<String, ApiError> {
    // Repeated headers must agree, like the two header kinds below.
    for name in [axum::http::header::AUTHORIZATION.as_str(), "x-api-key"] {
        let mut values = headers.get_all(name).iter();
        if let Some(first) = values.next()
            && values.any(|v| v != first)
        {
            return Err(ApiError::unauthorized(
                "the request carries several different API keys; send one key",
            ));
        }
    }
    let bearer = match headers.get(axum::http::header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
            let (scheme, token) = value.split_once(' ').ok_or_else(|| {
                ApiError::unauthorized("Authorization must be `Bearer <API key>`")
            })?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::unauthorized(
                    "Authorization must be `Bearer <API key>`",
                ));
            }
            Some(token.trim().to_owned())
        }
        None => None,
    };
    let header = match headers.get("x-api-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::unauthorized("malformed X-API-Key header"))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    match (bearer, header) {
        (Some(a), Some(b)) if a != b => Err(ApiError::unauthorized(
            "Authorization and X-API-Key name different keys; send one key",
        )),
        (Some(key), _) | (None, Some(key)) => Ok(key),
        (None, None) => Err(ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn either_header_carries_the_key() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer mk_a")])).unwrap(),
            "mk_a"
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "mk_a")])).unwrap(),
            "mk_a"
        );
        assert_eq!(
            presented_key(&headers(&[
                ("authorization", "bearer mk_a"),
                ("x-api-key", "mk_a")
            ]))
            .unwrap(),
            "mk_a"
        );
    }

    #[test]
    fn repeated_headers_naming_different_keys_are_refused() {
        let mut h = HeaderMap::new();
        h.append("authorization", "Bearer mk_a".parse().unwrap());
        h.append("authorization", "Bearer mk_b".parse().unwrap());
        assert!(presented_key(&h).is_err());
        let mut h = HeaderMap::new();
        h.append("x-api-key", "mk_a".parse().unwrap());
        h.append("x-api-key", "mk_a".parse().unwrap());
        assert_eq!(presented_key(&h).unwrap(), "mk_a");
    }

    #[test]
    fn conflicting_or_missing_credentials_are_refused() {
        assert!(
            presented_key(&headers(&[
                ("authorization", "Bearer mk_a"),
                ("x-api-key", "mk_b")
            ]))
            .is_err()
        );
        assert!(presented_key(&headers(&[])).is_err());
        assert!(presented_key(&headers(&[("authorization", "Basic abc")])).is_err());
    }
}
