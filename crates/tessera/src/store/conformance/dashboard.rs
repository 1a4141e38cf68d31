//! Conformance checks for what the dashboard stores: sessions, API keys,
//! attempt headers and activity counts.

use super::*;

fn new_key(user: UserId, name: &str) -> NewApiKey {
    NewApiKey {
        user_id: user,
        name: name.into(),
        key_hash: format!("hash-{name}-{user}"),
        created_at: T0,
    }
}

pub async fn a_session_ends_on_expiry_logout_or_when_its_key_is_revoked(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let a = store.create_api_key(new_key(user, "a")).await.unwrap();
    let b = store.create_api_key(new_key(user, "b")).await.unwrap();
    let session = |key: &ApiKeyRecord| SessionRecord {
        user_id: user,
        api_key_id: key.id,
        created_at: T0,
        expires_at: T0 + 1000,
    };
    store.create_session("s1", &session(&a)).await.unwrap();
    store.create_session("s2", &session(&a)).await.unwrap();
    store.create_session("s3", &session(&b)).await.unwrap();
    let found = store.session("s1", T0 + 1).await.unwrap().expect("live");
    assert_eq!((found.user_id, found.api_key_id), (user, a.id));
    assert!(store.session("s1", T0 + 1000).await.unwrap().is_none());
    assert!(store.session("nope", T0).await.unwrap().is_none());

    store.delete_session("s1").await.unwrap();
    assert!(store.session("s1", T0).await.unwrap().is_none());
    assert!(store.session("s2", T0).await.unwrap().is_some());

    store.revoke_api_key(user, a.id, T0 + 5).await.unwrap();
    assert!(store.session("s2", T0).await.unwrap().is_none());
    assert!(store.session("s3", T0).await.unwrap().is_some());
    assert_eq!(store.prune_sessions(T0 + 1000).await.unwrap(), 1);
}

pub async fn api_keys_are_listed_and_revoked_per_user_but_never_the_last(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let other = store.create_user(T0).await.unwrap();
    let a = store.create_api_key(new_key(user, "a")).await.unwrap();
    let b = store.create_api_key(new_key(user, "b")).await.unwrap();
    let theirs = store.create_api_key(new_key(other, "c")).await.unwrap();
    let names = |keys: Vec<ApiKeyRecord>| keys.into_iter().map(|k| k.name).collect::<Vec<_>>();
    let mut mine = names(store.list_api_keys(user).await.unwrap());
    mine.sort();
    assert_eq!(mine, ["a", "b"]);
    assert!(matches!(
        store.revoke_api_key(user, theirs.id, T0).await,
        Err(StoreError::NotFound)
    ));
    store.revoke_api_key(user, a.id, T0).await.unwrap();
    assert!(matches!(
        store.revoke_api_key(user, a.id, T0).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revoke_api_key(user, b.id, T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(names(store.list_api_keys(user).await.unwrap()), ["b"]);
    assert!(
        store
            .authenticate(&format!("hash-a-{user}"), T0)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn attempts_keep_headers_and_reason_and_activity_counts_by_status(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let ids = store
        .enqueue_event(test_event(
            user,
            None,
            &["http://a.test/h", "http://b.test/h"],
        ))
        .await
        .unwrap();
    let c = store
        .claim_deliveries("a", T0, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    let failed = attempt(503);
    let first = c.iter().find(|d| d.id == ids[0]).unwrap();
    store
        .record_attempt(first.id, "a", &failed, NextState::Failed)
        .await
        .unwrap();
    let (_, attempts) = store.delivery(user, ids[0]).await.unwrap().unwrap();
    assert_eq!(attempts, vec![failed]);

    let summary = store.activity(user, T0 - 1).await.unwrap();
    let mut deliveries = summary.deliveries.clone();
    deliveries.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        deliveries,
        vec![(DeliveryStatus::Failed, 1), (DeliveryStatus::Pending, 1)]
    );
    let later = store.activity(user, T0 + 1_000_000).await.unwrap();
    assert!(later.deliveries.is_empty() && later.runs.is_empty());
    let nobody = store.activity(UserId::new(), T0 - 1).await.unwrap();
    assert!(nobody.deliveries.is_empty());
}
