//! Conformance checks for triggers: schedule slots and YouTube channels.

use super::*;

pub async fn a_schedule_slot_fires_once_however_many_schedulers_race(store: DynStore) {
    use crate::domain::graph::{AgentGraph, Connection, NodeSpec};
    let user = store.default_user(T0).await.unwrap();
    let node = |id: &str, t: &str| NodeSpec {
        id: id.into(),
        node_type: t.into(),
        params: Default::default(),
    };
    let graph = AgentGraph {
        nodes: vec![node("in", "video_input"), node("out", "render")],
        connections: vec![Connection {
            source: "in".into(),
            target: "out".into(),
        }],
    };
    let agent = AgentRecord {
        id: AgentId::new(),
        user_id: user,
        name: "a".into(),
        description: None,
        graph: graph.clone(),
        created_at: T0,
        updated_at: T0,
    };
    store.create_agent(&agent).await.unwrap();
    let trigger = TriggerRecord {
        id: crate::domain::ids::TriggerId::new(),
        user_id: user,
        agent_id: agent.id,
        kind: TriggerKind::Schedule(ScheduleSpec {
            cron_expression: "* * * * *".into(),
            timezone: "UTC".into(),
            video_urls: vec!["http://a.test/v.mp4".into()],
            video_ids: Vec::new(),
            update_params: None,
        }),
        callback_url: None,
        created_at: T0,
        next_run_at: Some(T0 + 60_000),
        last_fired_at: None,
        last_poll_at: None,
        last_error: None,
    };
    store.create_trigger(&trigger).await.unwrap();
    assert!(store.due_schedules(T0, 10).await.unwrap().is_empty());
    assert_eq!(store.due_schedules(T0 + 60_000, 10).await.unwrap().len(), 1);
    let fire = |owner_run: RunRecord| ScheduleFire {
        trigger_id: trigger.id,
        slot_at: T0 + 60_000,
        next_run_at: Some(T0 + 120_000),
        run: owner_run,
    };
    let run = |now| {
        RunRecord::queued(
            &agent,
            vec![],
            false,
            None,
            graph.clone(),
            manual(user),
            Some(trigger.id),
            now,
        )
    };
    assert!(store.fire_schedule(fire(run(T0 + 60_000))).await.unwrap());
    assert!(
        !store.fire_schedule(fire(run(T0 + 60_001))).await.unwrap(),
        "the second scheduler loses"
    );
    let runs = store
        .list_runs(
            user,
            &RunFilter {
                trigger_id: Some(trigger.id),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let stored = store.trigger(user, trigger.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.last_fired_at, stored.next_run_at),
        (Some(T0 + 60_000), Some(T0 + 120_000))
    );
    store.delete_trigger(user, trigger.id, T0).await.unwrap();
    assert!(
        store
            .due_schedules(T0 + 999_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.delete_trigger(user, trigger.id, T0).await,
        Err(StoreError::NotFound)
    ));
}

const CHANNEL: &str = "UCabcdefghijklmnopqrstuv";

async fn youtube_agent(store: &DynStore) -> (AgentRecord, crate::domain::ids::TriggerId) {
    let user = store.default_user(T0).await.unwrap();
    let agent = AgentRecord {
        id: AgentId::new(),
        user_id: user,
        name: "yt".into(),
        description: None,
        graph: graph(),
        created_at: T0,
        updated_at: T0,
    };
    store.create_agent(&agent).await.unwrap();
    let trigger = store
        .add_youtube_channels(YoutubeAdd {
            user_id: user,
            agent_id: agent.id,
            channels: vec![CHANNEL.into()],
            filter: YoutubeFilter::default(),
            callback: CallbackChange::Keep,
            new_trigger_id: crate::domain::ids::TriggerId::new(),
            now: T0,
        })
        .await
        .unwrap();
    (agent, trigger)
}

fn finish(agent: AgentId, owner: &str, baseline: Option<Vec<String>>, at: i64) -> YoutubePoll {
    YoutubePoll {
        agent_id: agent,
        channel_id: CHANNEL.into(),
        owner: owner.into(),
        error: None,
        baseline,
        next_poll_at: at + 60_000,
        at,
    }
}

pub async fn a_youtube_channel_is_polled_by_one_owner_at_a_time(store: DynStore) {
    let (agent, trigger) = youtube_agent(&store).await;
    let claimed = store
        .claim_youtube_channels("a", T0, T0 + 1000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].trigger_id, claimed[0].primed), (trigger, false));
    assert!(
        store
            .claim_youtube_channels("b", T0 + 999, T0 + 2000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_youtube_channels("b", T0 + 1001, T0 + 2000, 10)
            .await
            .unwrap()
            .len(),
        1,
        "an expired lease is taken over"
    );
    // The old owner lost the channel: its result is ignored.
    store
        .finish_youtube_poll(finish(agent.id, "a", Some(vec!["v1".into()]), T0 + 1500))
        .await
        .unwrap();
    store
        .finish_youtube_poll(finish(agent.id, "b", Some(vec!["v0".into()]), T0 + 1500))
        .await
        .unwrap();
    assert!(
        store
            .claim_youtube_channels("c", T0 + 2000, T0 + 3000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its next poll"
    );
    let again = store
        .claim_youtube_channels("c", T0 + 61_500, T0 + 70_000, 10)
        .await
        .unwrap();
    assert!(again[0].primed);
    let unseen = store
        .unseen_videos(agent.id, CHANNEL, vec!["v0".into(), "v1".into()])
        .await
        .unwrap();
    assert_eq!(
        unseen,
        vec!["v1".to_owned()],
        "only the owner's baseline counts"
    );
}

pub async fn a_youtube_video_fires_once(store: DynStore) {
    let (agent, trigger) = youtube_agent(&store).await;
    store
        .claim_youtube_channels("a", T0, T0 + 10_000, 10)
        .await
        .unwrap();
    let video = |owner: &str| YoutubeVideo {
        agent_id: agent.id,
        channel_id: CHANNEL.into(),
        video_id: "vid".into(),
        owner: owner.into(),
        outcome: VideoOutcome::Fired(Box::new(RunRecord::queued(
            &agent,
            vec![],
            false,
            None,
            graph(),
            manual(agent.user_id),
            Some(trigger),
            T0,
        ))),
        at: T0,
    };
    assert!(
        !store.record_youtube_video(video("other")).await.unwrap(),
        "nothing is written without the lease"
    );
    assert!(store.record_youtube_video(video("a")).await.unwrap());
    assert!(!store.record_youtube_video(video("a")).await.unwrap());
    let runs = store
        .list_runs(
            agent.user_id,
            &RunFilter {
                trigger_id: Some(trigger),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let removed = store
        .remove_youtube_channels(agent.user_id, agent.id, vec![CHANNEL.into()], T0)
        .await
        .unwrap();
    assert_eq!(removed, vec![CHANNEL.to_owned()]);
    assert!(
        store
            .trigger(agent.user_id, trigger)
            .await
            .unwrap()
            .is_none(),
        "a trigger without channels is gone"
    );
    assert!(
        store
            .unseen_videos(agent.id, CHANNEL, vec!["vid".into()])
            .await
            .unwrap()
            .is_empty(),
        "seen-state outlives removal"
    );
}
