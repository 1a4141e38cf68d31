//! The scheduler role: fires due schedule slots. Each slot fires exactly
//! once cluster-wide (the slot is a primary key written in the same
//! transaction as its run), and after downtime only the latest missed slot
//! fires — never a burst.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::{Services, Wakeups};
use crate::config::Config;
use crate::domain::cron::Schedule;
use crate::domain::graph;
use crate::domain::payload::iso8601;
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
        Scheduler {
            store: services.store.clone(),
            config: services.config.clone(),
            wake: services.wake.clone(),
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
        let Some(slot_node) = graph
            .nodes
            .iter()
            .find(|n| n.node_type == "video_input")
            .map(|n| n.id.clone())
        else {
            return self
                .skip(trigger, next, "the agent has no video_input node", now_ms)
                .await;
        };
        let sources = spec
            .video_urls
            .iter()
            .map(|url| SourceSpec {
                slot: slot_node.clone(),
                kind: SourceKind::Url { url: url.clone() },
                clip_start_ms: None,
                clip_end_ms: None,
            })
            .collect();
        let triggered_by = json!({
            "type": "schedule",
            "scheduled_at": iso8601(slot),
            "schedule_id": trigger.id,
            "cron_expression": spec.cron_expression,
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
