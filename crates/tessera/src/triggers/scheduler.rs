//! The scheduler role: fires due schedule slots. Each slot fires exactly
//! once cluster-wide (the slot is a primary key written in the same
//! transaction as its run), and after downtime only the latest missed slot
//! fires — never a burst.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::{Services, Wakeups};
use crate::config::Config;
use crate::domain::cron::Schedule;
use crate::domain::graph;
use crate::domain::payload::{ScheduleTriggerInfo, TriggerInfo, iso8601};
use crate::store::{
    DynStore, RunRecord, ScheduleFire, ScheduleSpec, SourceKind, SourceSpec, StoreResult,
    TriggerKind, TriggerRecord,
};

/// Most schedules looked at per tick.
const BATCH: u32 = 100;

pub struct Scheduler {
    store: DynStore,
    config: Arc<Config>,
    wake: Wakeups,
}

impl Scheduler {
    pub fn new(services: &Services) -> Self {
        Self::from_parts(
            services.store.clone(),
            services.config.clone(),
            services.wake.clone(),
        )
    }

    /// A scheduler over just a store: `tick(now)` is then driven by the caller's clock.
    pub fn from_parts(store: DynStore, config: Arc<Config>, wake: Wakeups) -> Self {
        Scheduler {
            store,
            config,
            wake,
        }
    }

    /// Tick every poll interval until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.tick(Utc::now()).await {
                tracing::error!(error = %e, "scheduler tick failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Fire every schedule due at `now`; returns how many runs this call created.
    pub async fn tick(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let mut created = 0;
        for trigger in self
            .store
            .due_schedules(now.timestamp_millis(), BATCH)
            .await?
        {
            // `due_schedules` returns schedules only; anything else is not ours.
            let TriggerKind::Schedule(spec) = &trigger.kind else {
                continue;
            };
            created += usize::from(self.fire(&trigger, spec, now).await?);
        }
        if created > 0 {
            self.wake.runs.notify_one();
        }
        Ok(created)
    }

    async fn fire(
        &self,
        trigger: &TriggerRecord,
        spec: &ScheduleSpec,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let now_ms = now.timestamp_millis();
        let schedule = match Schedule::parse(&spec.cron_expression, &spec.timezone) {
            Ok(s) => s,
            Err(e) => {
                return self
                    .skip(trigger, None, &format!("invalid schedule: {e}"), now_ms)
                    .await;
            }
        };
        let next = schedule.next_after(now).map(|t| t.timestamp_millis());
        // Never fired: count from the schedule's creation, so old slots never fire.
        let since =
            DateTime::from_timestamp_millis(trigger.last_fired_at.unwrap_or(trigger.created_at));
        let Some(slot) = schedule.due_slot(since, now) else {
            self.store
                .skip_schedule(trigger.id, next, trigger.last_error.as_deref(), now_ms)
                .await?;
            return Ok(false);
        };
        let Some(agent) = self.store.agent(trigger.user_id, trigger.agent_id).await? else {
            return self
                .skip(
                    trigger,
                    None,
                    "the agent was deleted; the schedule stopped",
                    now_ms,
                )
                .await;
        };
        let graph = match &spec.update_params {
            Some(update) => graph::apply_update_params(&agent.graph, update),
            None => Ok(agent.graph.clone()),
        };
        let graph = match graph {
            Ok(g) => g,
            Err(e) => {
                return self
                    .skip(
                        trigger,
                        next,
                        &format!("update_params no longer fit the agent: {e}"),
                        now_ms,
                    )
                    .await;
            }
        };
        let Some(slot_node) = graph::single_input(&graph) else {
            return self
                .skip(
                    trigger,
                    next,
                    "the agent no longer has exactly one video_input node",
                    now_ms,
                )
                .await;
        };
        let urls = spec
            .video_urls
            .iter()
            .map(|url| SourceKind::Url { url: url.clone() });
        let uploads = spec
            .video_ids
            .iter()
            .map(|&video_id| SourceKind::Upload { video_id });
        let sources = urls
            .chain(uploads)
            .map(|kind| SourceSpec {
                slot: slot_node.clone(),
                kind,
                clip_start_ms: None,
                clip_end_ms: None,
            })
            .collect();
        let triggered_by = TriggerInfo::Schedule(ScheduleTriggerInfo {
            kind: Default::default(),
            scheduled_at: iso8601(slot),
            schedule_id: trigger.id.to_string(),
            cron_expression: spec.cron_expression.clone(),
        });
        let run = RunRecord::queued(
            &agent,
            sources,
            false,
            trigger.callback_url.clone(),
            graph,
            triggered_by,
            Some(trigger.id),
            now_ms,
        );
        let fired = self
            .store
            .fire_schedule(ScheduleFire {
                trigger_id: trigger.id,
                slot_at: slot.timestamp_millis(),
                next_run_at: next,
                run,
            })
            .await?;
        if fired {
            tracing::info!(schedule = %trigger.id, slot = %iso8601(slot), "schedule fired");
        }
        Ok(fired)
    }

    async fn skip(
        &self,
        trigger: &TriggerRecord,
        next: Option<i64>,
        why: &str,
        now: i64,
    ) -> StoreResult<bool> {
        tracing::warn!(schedule = %trigger.id, reason = why, "schedule slot skipped");
        self.store
            .skip_schedule(trigger.id, next, Some(why), now)
            .await?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::graph::validate;
    use crate::domain::ids::{AgentId, TriggerId};
    use crate::store::{AgentRecord, RunFilter, Store};

    /// A scheduler over a fresh SQLite store, and a schedule on one agent.
    async fn setup(
        cron: &str,
        zone: &str,
        created: DateTime<Utc>,
    ) -> (Scheduler, DynStore, TriggerId) {
        let dir = std::env::temp_dir().join(format!("tessera-scheduler-{}", uuid::Uuid::new_v4()));
        let store = crate::store::sqlite::SqliteStore::open(&dir.join("t.db")).unwrap();
        store.migrate().await.unwrap();
        let store: DynStore = Arc::new(store);
        let user = store.default_user(0).await.unwrap();
        let nodes = serde_json::from_value(
            json!([{"id": "in", "type": "video_input"}, {"id": "out", "type": "render"}]),
        )
        .unwrap();
        let edges = serde_json::from_value(json!([{"source": "in", "target": "out"}])).unwrap();
        let agent = AgentRecord {
            id: AgentId::new(),
            user_id: user,
            name: "a".into(),
            description: None,
            graph: validate(nodes, edges).unwrap(),
            created_at: 0,
            updated_at: 0,
        };
        store.create_agent(&agent).await.unwrap();
        let schedule = Schedule::parse(cron, zone).unwrap();
        let trigger = TriggerRecord {
            id: TriggerId::new(),
            user_id: user,
            agent_id: agent.id,
            kind: TriggerKind::Schedule(ScheduleSpec {
                cron_expression: cron.into(),
                timezone: zone.into(),
                video_urls: vec!["http://a.test/v.mp4".into()],
                video_ids: Vec::new(),
                update_params: None,
            }),
            callback_url: None,
            created_at: created.timestamp_millis(),
            next_run_at: schedule.next_after(created).map(|t| t.timestamp_millis()),
            last_fired_at: None,
            last_poll_at: None,
            last_error: None,
        };
        store.create_trigger(&trigger).await.unwrap();
        let config = Arc::new(Config::resolve(crate::config::Layer::default(), None).unwrap());
        (
            Scheduler::from_parts(store.clone(), config, Wakeups::new()),
            store,
            trigger.id,
        )
    }

    /// Drive the clock from `from` to `to` in steps, ticking at each.
    async fn tick_through(
        s: &Scheduler,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: chrono::Duration,
    ) {
        let mut now = from;
        while now <= to {
            s.tick(now).await.unwrap();
            now += step;
        }
    }

    async fn fired_slots(store: &DynStore, trigger: TriggerId) -> Vec<String> {
        let user = store.default_user(0).await.unwrap();
        let filter = RunFilter {
            trigger_id: Some(trigger),
            limit: 100,
            ..RunFilter::default()
        };
        let mut slots: Vec<String> = store
            .list_runs(user, &filter)
            .await
            .unwrap()
            .iter()
            .map(|r| match &r.triggered_by {
                TriggerInfo::Schedule(s) => s.scheduled_at.clone(),
                other => panic!("not a schedule: {other:?}"),
            })
            .collect();
        slots.sort();
        slots
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[tokio::test]
    async fn a_repeated_local_time_on_fall_back_day_fires_once() {
        let (s, store, id) =
            setup("30 1 * * *", "America/New_York", utc(2026, 10, 30, 12, 0)).await;
        tick_through(
            &s,
            utc(2026, 10, 30, 12, 0),
            utc(2026, 11, 2, 12, 0),
            chrono::Duration::minutes(10),
        )
        .await;
        // 01:30 EDT on Oct 31 and Nov 1 (the first of the two 01:30s), 01:30 EST on Nov 2.
        assert_eq!(
            fired_slots(&store, id).await,
            [
                "2026-10-31T05:30:00.000Z",
                "2026-11-01T05:30:00.000Z",
                "2026-11-02T06:30:00.000Z"
            ]
        );
    }

    #[tokio::test]
    async fn a_skipped_local_time_on_spring_forward_day_fires_when_the_clock_jumps() {
        let (s, store, id) = setup("30 2 * * *", "America/New_York", utc(2026, 3, 7, 0, 0)).await;
        tick_through(
            &s,
            utc(2026, 3, 7, 0, 0),
            utc(2026, 3, 9, 12, 0),
            chrono::Duration::minutes(10),
        )
        .await;
        // 02:30 EST on Mar 7; on Mar 8 02:30 does not exist: 03:00 EDT; 02:30 EDT on Mar 9.
        assert_eq!(
            fired_slots(&store, id).await,
            [
                "2026-03-07T07:30:00.000Z",
                "2026-03-08T07:00:00.000Z",
                "2026-03-09T06:30:00.000Z"
            ]
        );
    }

    #[tokio::test]
    async fn after_days_of_downtime_only_the_latest_missed_slot_fires() {
        let (s, store, id) = setup("0 * * * *", "Europe/Paris", utc(2026, 6, 1, 0, 30)).await;
        s.tick(utc(2026, 6, 1, 1, 1)).await.unwrap();
        assert_eq!(
            s.tick(utc(2026, 6, 5, 13, 17)).await.unwrap(),
            1,
            "one catch-up run, not ~100"
        );
        assert_eq!(s.tick(utc(2026, 6, 5, 13, 18)).await.unwrap(), 0);
        assert_eq!(
            fired_slots(&store, id).await,
            ["2026-06-01T01:00:00.000Z", "2026-06-05T13:00:00.000Z"]
        );
    }

    #[tokio::test]
    async fn ticking_twice_at_the_same_instant_fires_a_slot_once() {
        let (s, store, id) = setup("*/5 * * * *", "UTC", utc(2026, 1, 1, 0, 0)).await;
        let other = Scheduler::from_parts(store.clone(), s.config.clone(), Wakeups::new());
        let now = utc(2026, 1, 1, 0, 5);
        let (a, b) = tokio::join!(s.tick(now), other.tick(now));
        assert_eq!(a.unwrap() + b.unwrap(), 1);
        assert_eq!(fired_slots(&store, id).await.len(), 1);
    }
}
