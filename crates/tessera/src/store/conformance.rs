//! Behaviour every [`Store`](super::Store) backend must have, written once
//! against `DynStore` so each backend's tests run the same checks: leases are
//! exclusive until they expire, stale owners cannot overwrite state, per-run
//! order and per-destination room are respected, pruning keeps what is owed.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::domain::graph::{AgentGraph, Connection, NodeSpec};
use crate::domain::ids::{AgentId, EventId, RunId, UserId};
use crate::domain::payload::{EventBody, FinishedStatus};

mod dashboard;
mod triggers;
pub use dashboard::*;
pub use triggers::*;

const T0: i64 = 1_000_000;

fn test_event(user: UserId, run: Option<RunId>, urls: &[&str]) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        user_id: user,
        run_id: run,
        body: EventBody::Test {
            timestamp: chrono::Utc::now(),
            user_id: user,
            message: "t".into(),
            test_data: json!({}),
        },
        destinations: urls.iter().map(|u| u.to_string()).collect(),
        attempts_allowed: 4,
        created_at: T0,
    }
}

/// `triggered_by` of a run started through the API.
fn manual(user: UserId) -> crate::domain::payload::TriggerInfo {
    use crate::domain::payload::{ManualSource, ManualTriggerInfo, TriggerInfo};
    TriggerInfo::Manual(ManualTriggerInfo {
        kind: Default::default(),
        source: ManualSource::Api,
        user_id: user.to_string(),
        triggered_at: "2026-01-01T00:00:00.000Z".into(),
    })
}

fn room(per_destination: u32) -> DestinationRoom {
    DestinationRoom {
        per_destination,
        busy: HashMap::new(),
    }
}

fn attempt(code: u16) -> AttemptRecord {
    AttemptRecord {
        started_at: T0,
        duration_ms: 5,
        status_code: Some(code),
        error: (code >= 300).then(|| "status".to_owned()),
        error_detail: None,
        response_snippet: None,
        truncated: false,
        request_headers: vec![("webhook-id".into(), "msg".into())],
        response_headers: vec![("x-hostile".into(), "<script>".into())],
        reason: (code >= 300).then(|| "Nope <b>".to_owned()),
    }
}

pub async fn a_delivery_lease_is_exclusive_until_it_expires(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    store
        .enqueue_event(test_event(user, None, &["http://a.test/h"]))
        .await
        .unwrap();
    let first = store
        .claim_deliveries("a", T0, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_deliveries("b", T0 + 999, T0 + 2000, 10, &room(8))
            .await
            .unwrap()
            .is_empty()
    );
    let taken_over = store
        .claim_deliveries("b", T0 + 1001, T0 + 3000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 1, "an expired lease is taken over");

    // The old owner's late result is recorded but does not change the state.
    store
        .record_attempt(first[0].id, "a", &attempt(200), NextState::Succeeded)
        .await
        .unwrap();
    let (d, attempts) = store.delivery(user, first[0].id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(attempts.len(), 1);
    store
        .record_attempt(first[0].id, "b", &attempt(200), NextState::Succeeded)
        .await
        .unwrap();
    let (d, attempts) = store.delivery(user, first[0].id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(attempts.len(), 2);
}

pub async fn a_released_delivery_can_be_claimed_again_at_once(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    store
        .enqueue_event(test_event(user, None, &["http://a.test/h"]))
        .await
        .unwrap();
    let first = store
        .claim_deliveries("a", T0, T0 + 60_000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Only the owner's release counts.
    store
        .release_deliveries("b", vec![first[0].id])
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries("b", T0 + 1, T0 + 60_000, 10, &room(8))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .release_deliveries("a", vec![first[0].id])
        .await
        .unwrap();
    let again = store
        .claim_deliveries("b", T0 + 2, T0 + 60_000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "released long before its lease expired");
    let (d, attempts) = store.delivery(user, first[0].id).await.unwrap().unwrap();
    assert_eq!((d.status, attempts.len()), (DeliveryStatus::Pending, 0));
}

pub async fn a_later_event_of_a_run_waits_for_the_earlier_one_to_the_same_url(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let run = Some(RunId::new());
    store
        .enqueue_event(test_event(user, run, &["http://a.test/h"]))
        .await
        .unwrap();
    store
        .enqueue_event(test_event(
            user,
            run,
            &["http://a.test/h", "http://b.test/h"],
        ))
        .await
        .unwrap();
    let claimed = store
        .claim_deliveries("a", T0, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    let urls: Vec<_> = claimed.iter().map(|c| c.url.as_str()).collect();
    assert_eq!(claimed.len(), 2, "{urls:?}");
    assert!(
        urls.contains(&"http://b.test/h"),
        "another URL does not wait"
    );
    let first = claimed.iter().find(|c| c.url == "http://a.test/h").unwrap();
    // Still pending after a failure with a retry due: the second still waits.
    store
        .record_attempt(first.id, "a", &attempt(500), NextState::RetryAt(T0))
        .await
        .unwrap();
    let again = store
        .claim_deliveries("a", T0 + 1, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first.id);
    store
        .record_attempt(first.id, "a", &attempt(500), NextState::Failed)
        .await
        .unwrap();
    let next = store
        .claim_deliveries("a", T0 + 2, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(
        next.len(),
        1,
        "a finally failed predecessor releases the next event"
    );
    assert_eq!(next[0].url, "http://a.test/h");
}

pub async fn claims_respect_each_destinations_room(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    for _ in 0..5 {
        store
            .enqueue_event(test_event(
                user,
                None,
                &["http://dead.test/h", "http://ok.test/h"],
            ))
            .await
            .unwrap();
    }
    let mut r = room(2);
    r.busy.insert("http://dead.test:80".into(), 0);
    let claimed = store
        .claim_deliveries("a", T0, T0 + 1000, 10, &r)
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        2,
        "two for ok.test, none for the saturated dead.test"
    );
    assert!(claimed.iter().all(|c| c.destination == "http://ok.test:80"));
    let mut r = room(2);
    r.busy.insert("http://ok.test:80".into(), 1);
    let claimed = store
        .claim_deliveries("b", T0, T0 + 1000, 10, &r)
        .await
        .unwrap();
    let ok = claimed
        .iter()
        .filter(|c| c.destination == "http://ok.test:80")
        .count();
    let dead = claimed
        .iter()
        .filter(|c| c.destination == "http://dead.test:80")
        .count();
    assert_eq!((ok, dead), (1, 2));
}

pub async fn a_fresh_delivery_is_claimed_beside_a_backlog_to_the_same_destination(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    // Twenty due deliveries to a.test, oldest first, queued in one batch, a
    // backlog to the saturated b.test, then one fresh delivery to a.test.
    let at = |t: i64, url: &str| NewEvent {
        created_at: t,
        ..test_event(user, None, &[url])
    };
    let backlog: Vec<NewEvent> = (0..20)
        .map(|i| at(T0 + i, "http://a.test/h"))
        .chain((0..5).map(|i| at(T0 + i, "http://b.test/h")))
        .collect();
    let ids: Vec<EventId> = backlog.iter().map(|e| e.id).collect();
    store.enqueue_events(backlog).await.unwrap();
    let fresh = at(T0 + 500, "http://a.test/h");
    let fresh_id = fresh.id;
    store.enqueue_event(fresh).await.unwrap();

    let mut r = room(4);
    r.busy.insert("http://b.test:80".into(), 0);
    let claimed = store
        .claim_deliveries("a", T0 + 1000, T0 + 9000, 10, &r)
        .await
        .unwrap();
    let mut got: Vec<(EventId, ClaimLane)> = claimed.iter().map(|c| (c.event_id, c.lane)).collect();
    got.sort_by_key(|(id, _)| *id);
    let mut want = vec![
        (ids[0], ClaimLane::Oldest),
        (ids[1], ClaimLane::Oldest),
        (ids[19], ClaimLane::Newest),
        (fresh_id, ClaimLane::Newest),
    ];
    want.sort_by_key(|(id, _)| *id);
    assert_eq!(
        got, want,
        "a.test's room of 4: its two oldest and its two newest; nothing for the saturated b.test"
    );

    // The backlog keeps draining from its old end while fresh ones jump it.
    let next = store
        .claim_deliveries("a", T0 + 1001, T0 + 9000, 10, &r)
        .await
        .unwrap();
    let got: Vec<(EventId, ClaimLane)> = next.iter().map(|c| (c.event_id, c.lane)).collect();
    assert_eq!(got.len(), 4);
    assert!(got.contains(&(ids[2], ClaimLane::Oldest)), "{got:?}");
    assert!(got.contains(&(ids[17], ClaimLane::Newest)), "{got:?}");
}

pub async fn a_manual_retry_allows_exactly_one_more_attempt(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let ids = store
        .enqueue_event(test_event(user, None, &["http://a.test/h"]))
        .await
        .unwrap();
    let c = store
        .claim_deliveries("a", T0, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    store
        .record_attempt(c[0].id, "a", &attempt(500), NextState::Failed)
        .await
        .unwrap();
    assert!(matches!(
        store.retry_delivery(UserId::new(), ids[0], T0 + 10).await,
        Err(StoreError::NotFound)
    ));
    store.retry_delivery(user, ids[0], T0 + 10).await.unwrap();
    let c = store
        .claim_deliveries("a", T0 + 10, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].attempts_allowed, c[0].attempt_count + 1);

    // A pending delivery waiting for its retry is tried now and keeps its budget.
    let ids = store
        .enqueue_event(test_event(user, None, &["http://b.test/h"]))
        .await
        .unwrap();
    let c = store
        .claim_deliveries("a", T0 + 20, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    let waiting = c.iter().find(|d| d.id == ids[0]).unwrap();
    assert_eq!(waiting.attempts_allowed, 4);
    store
        .record_attempt(
            waiting.id,
            "a",
            &attempt(500),
            NextState::RetryAt(T0 + 999_999),
        )
        .await
        .unwrap();
    store.retry_delivery(user, ids[0], T0 + 30).await.unwrap();
    let c = store
        .claim_deliveries("a", T0 + 30, T0 + 2000, 10, &room(8))
        .await
        .unwrap();
    let now = c.iter().find(|d| d.id == ids[0]).expect("due at once");
    assert_eq!((now.attempt_count, now.attempts_allowed), (1, 4));
}

pub async fn pruning_removes_old_finished_deliveries_and_keeps_pending_ones(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    store
        .enqueue_event(test_event(user, None, &["http://a.test/h"]))
        .await
        .unwrap();
    store
        .enqueue_event(test_event(user, None, &["http://b.test/h"]))
        .await
        .unwrap();
    let c = store
        .claim_deliveries("a", T0, T0 + 1000, 1, &room(8))
        .await
        .unwrap();
    store
        .record_attempt(c[0].id, "a", &attempt(200), NextState::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.prune_deliveries(T0).await.unwrap(),
        0,
        "nothing is that old yet"
    );
    assert_eq!(store.prune_deliveries(T0 + 10_000).await.unwrap(), 1);
    assert!(store.delivery(user, c[0].id).await.unwrap().is_none());
    assert_eq!(store.outbox_stats().await.unwrap().pending, 1);
}

fn graph() -> AgentGraph {
    let node = |id: &str, t: &str| NodeSpec {
        id: id.into(),
        node_type: t.into(),
        params: Default::default(),
    };
    AgentGraph {
        nodes: vec![node("in", "video_input"), node("out", "render")],
        connections: vec![Connection {
            source: "in".into(),
            target: "out".into(),
        }],
    }
}

pub async fn a_run_is_owned_through_its_lease(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let agent = AgentRecord {
        id: AgentId::new(),
        user_id: user,
        name: "a".into(),
        description: None,
        graph: graph(),
        created_at: T0,
        updated_at: T0,
    };
    store.create_agent(&agent).await.unwrap();
    let run = RunRecord {
        id: RunId::new(),
        agent_id: agent.id,
        user_id: user,
        status: RunStatus::Queued,
        sources: vec![SourceSpec {
            slot: "in".into(),
            kind: SourceKind::Url {
                url: "http://a.test/v.mp4".into(),
            },
            clip_start_ms: None,
            clip_end_ms: None,
        }],
        multi_input: false,
        callback_url: None,
        graph: graph(),
        triggered_by: manual(user),
        inputs: vec![],
        outputs: vec![],
        errors: vec![],
        status_message: None,
        created_at: T0,
        started_at: None,
        finished_at: None,
        attempt: 1,
        cancel_requested: false,
        trigger_id: None,
    };
    store.create_run(&run).await.unwrap();
    assert_eq!(
        store.claim_runs("a", T0, T0 + 1000, 5).await.unwrap().len(),
        1
    );
    assert!(
        store
            .claim_runs("b", T0 + 500, T0 + 1500, 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .check_in_run(run.id, "a", Some(T0 + 2000))
            .await
            .unwrap()
            .held
    );
    assert!(
        !store
            .check_in_run(run.id, "b", Some(T0 + 2000))
            .await
            .unwrap()
            .held
    );
    assert!(
        store
            .claim_runs("b", T0 + 1500, T0 + 2500, 5)
            .await
            .unwrap()
            .is_empty(),
        "the renewed lease holds past its first expiry"
    );

    let started = |owner: &str| RunStarted {
        id: run.id,
        owner: owner.into(),
        inputs: vec![],
        errors: vec![],
        status_message: None,
        at: T0,
    };
    let event = |body| NewEvent {
        body,
        ..test_event(user, Some(run.id), &["http://a.test/h"])
    };
    let started_body = EventBody::RunStarted {
        agent_id: agent.id,
        run_id: run.id,
        inputs: vec![],
        triggered_by: None,
        status_message: None,
        errors: vec![],
    };
    assert!(
        !store
            .start_run(started("b"), event(started_body.clone()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.outbox_stats().await.unwrap().pending,
        0,
        "a refused transition writes no event"
    );
    assert!(
        store
            .start_run(started("a"), event(started_body))
            .await
            .unwrap()
    );
    let finished = RunFinished {
        id: run.id,
        owner: "a".into(),
        status: FinishedStatus::Failed,
        cancelled: false,
        outputs: vec![],
        errors: vec![],
        status_message: Some("nothing".into()),
        at: T0 + 10,
    };
    let finished_body = EventBody::RunFinished {
        agent_id: agent.id,
        run_id: run.id,
        status: FinishedStatus::Failed,
        inputs: vec![],
        outputs: vec![],
        triggered_by: None,
        status_message: None,
        errors: vec![],
        cancelled: false,
    };
    assert!(
        store
            .finish_run(finished, event(finished_body))
            .await
            .unwrap()
    );
    let stored = store.run(user, run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Failed);
    assert_eq!(stored.finished_at, Some(T0 + 10));
    assert!(
        store
            .claim_runs("b", T0 + 5000, T0 + 6000, 5)
            .await
            .unwrap()
            .is_empty(),
        "final runs are never claimed"
    );
    assert_eq!(store.outbox_stats().await.unwrap().pending, 2);
}

pub async fn signing_key_rotation_keeps_the_previous_key_for_its_grace(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    let keys = store.signing_keys(user, "whsec_first", T0).await.unwrap();
    assert_eq!(keys.current, "whsec_first");
    assert!(keys.previous.is_none());
    let keys = store
        .rotate_signing_key(user, "whsec_second", T0 + 100, T0)
        .await
        .unwrap();
    assert_eq!(keys.current, "whsec_second");
    assert_eq!(keys.previous, Some(("whsec_first".into(), T0 + 100)));
    let later = store.signing_keys(user, "ignored", T0 + 101).await.unwrap();
    assert!(
        later.previous.is_none(),
        "the old key stops after its grace"
    );
}

pub async fn a_dead_owners_leases_can_be_expired_at_once(store: DynStore) {
    let user = store.default_user(T0).await.unwrap();
    store
        .enqueue_event(test_event(user, None, &["http://a.test/h"]))
        .await
        .unwrap();
    store
        .claim_deliveries("dead", T0, T0 + 60_000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(store.lease_owners().await.unwrap(), vec!["dead".to_owned()]);
    assert_eq!(store.expire_leases("dead").await.unwrap(), 1);
    let taken = store
        .claim_deliveries("alive", T0 + 1, T0 + 1000, 10, &room(8))
        .await
        .unwrap();
    assert_eq!(
        taken.len(),
        1,
        "no need to wait a minute for the dead owner's lease"
    );
}

/// Declare one `#[tokio::test]` per conformance check, each on a fresh store
/// from `$make` (an async expression yielding a `DynStore`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(optional async { Some($make.await) });
    };
    // `$make` gives `Option<DynStore>`: `None` when the backend's server is
    // not configured for this run (see `store::postgres::tests`).
    (optional $make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            a_delivery_lease_is_exclusive_until_it_expires,
            a_released_delivery_can_be_claimed_again_at_once,
            a_later_event_of_a_run_waits_for_the_earlier_one_to_the_same_url,
            claims_respect_each_destinations_room,
            a_fresh_delivery_is_claimed_beside_a_backlog_to_the_same_destination,
            a_manual_retry_allows_exactly_one_more_attempt,
            pruning_removes_old_finished_deliveries_and_keeps_pending_ones,
            a_run_is_owned_through_its_lease,
            signing_key_rotation_keeps_the_previous_key_for_its_grace,
            a_dead_owners_leases_can_be_expired_at_once,
            a_schedule_slot_fires_once_however_many_schedulers_race,
            a_youtube_channel_is_polled_by_one_owner_at_a_time,
            a_youtube_video_fires_once,
            a_session_ends_on_expiry_logout_or_when_its_key_is_revoked,
            api_keys_are_listed_and_revoked_per_user_but_never_the_last,
            attempts_keep_headers_and_reason_and_activity_counts_by_status,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                if let Some(store) = $make.await {
                    $crate::store::conformance::$name(store).await;
                }
            }
        )*
    };
}
