//! YouTube channel triggers: the watched channels (claimed by pollers with a
//! lease) and the videos each agent has seen on them.

use super::{Db, Row};

use super::{SqlContext, from_json, parse_id, runs, triggers};
use crate::domain::ids::{AgentId, TriggerId, UserId};
use crate::store::{
    CallbackChange, ClaimedChannel, StoreResult, TriggerKind, TriggerRecord, VideoOutcome,
    YoutubeAdd, YoutubeChannelRecord, YoutubeFilter, YoutubePoll, YoutubeVideo,
};

pub fn add<C: Db>(tx: &C, add: &YoutubeAdd) -> StoreResult<TriggerId> {
    let trigger_id = match trigger_for_filter(tx, add.agent_id, &add.filter)? {
        Some(id) => {
            if let CallbackChange::Set(url) = &add.callback {
                tx.execute(
                    "UPDATE triggers SET callback_url = ?2 WHERE id = ?1",
                    (id.to_string(), url),
                )
                .sql("set trigger callback")?;
            }
            id
        }
        None => {
            let callback_url = match &add.callback {
                CallbackChange::Set(url) => url.clone(),
                CallbackChange::Keep => None,
            };
            triggers::insert(
                tx,
                &TriggerRecord {
                    id: add.new_trigger_id,
                    user_id: add.user_id,
                    agent_id: add.agent_id,
                    kind: TriggerKind::Youtube { filter: add.filter },
                    callback_url,
                    created_at: add.now,
                    next_run_at: None,
                    last_fired_at: None,
                    last_poll_at: None,
                    last_error: None,
                },
            )?;
            add.new_trigger_id
        }
    };
    // A channel already watched keeps its poll state and seen videos; it
    // only moves to this trigger. A new one is polled at once (baseline).
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO youtube_channels (agent_id, channel_id, trigger_id, added_at, next_poll_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (agent_id, channel_id) DO UPDATE SET trigger_id = excluded.trigger_id",
        )
        .sql("prepare add channel")?;
    for channel in &add.channels {
        stmt.execute((
            add.agent_id.to_string(),
            channel,
            trigger_id.to_string(),
            add.now,
        ))
        .sql("add channel")?;
    }
    drop_empty_triggers(tx, add.agent_id, add.now)?;
    Ok(trigger_id)
}

/// The agent's live YouTube trigger with exactly this filter, if any.
fn trigger_for_filter<C: Db>(
    tx: &C,
    agent: AgentId,
    filter: &YoutubeFilter,
) -> StoreResult<Option<TriggerId>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, config FROM triggers
             WHERE agent_id = ?1 AND kind = 'youtube' AND deleted_at IS NULL ORDER BY id",
        )
        .sql("prepare youtube triggers")?;
    let rows = stmt
        .query_map([agent.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .sql("youtube triggers")?;
    for row in rows {
        let (id, config) = row.sql("read youtube trigger")?;
        if let TriggerKind::Youtube { filter: f } = from_json(&config)?
            && f == *filter
        {
            return Ok(Some(parse_id(&id)?));
        }
    }
    Ok(None)
}

/// Remove the agent's YouTube triggers that no longer watch any channel.
fn drop_empty_triggers<C: Db>(tx: &C, agent: AgentId, now: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE triggers SET deleted_at = ?2
         WHERE agent_id = ?1 AND kind = 'youtube' AND deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM youtube_channels c WHERE c.trigger_id = triggers.id)",
        (agent.to_string(), now),
    )
    .sql("drop empty youtube triggers")?;
    Ok(())
}

pub fn remove<C: Db>(
    tx: &C,
    user: UserId,
    agent: AgentId,
    channels: &[String],
    now: i64,
) -> StoreResult<Vec<String>> {
    let mut removed = Vec::new();
    for channel in channels {
        // The user check goes through the channel's trigger.
        let n = tx
            .execute(
                "DELETE FROM youtube_channels WHERE agent_id = ?1 AND channel_id = ?2
                   AND trigger_id IN (SELECT id FROM triggers WHERE user_id = ?3)",
                (agent.to_string(), channel, user.to_string()),
            )
            .sql("remove channel")?;
        if n > 0 {
            removed.push(channel.clone());
        }
    }
    drop_empty_triggers(tx, agent, now)?;
    Ok(removed)
}

pub fn of_agent<C: Db>(
    conn: &C,
    user: UserId,
    agent: AgentId,
) -> StoreResult<Vec<YoutubeChannelRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.trigger_id, c.channel_id, c.added_at, c.next_poll_at, c.last_poll_at, c.last_error
             FROM youtube_channels c JOIN triggers t ON t.id = c.trigger_id
             WHERE c.agent_id = ?1 AND t.user_id = ?2 AND t.deleted_at IS NULL
             ORDER BY c.channel_id",
        )
        .sql("prepare agent channels")?;
    let rows = stmt
        .query_map((agent.to_string(), user.to_string()), channel_row)
        .sql("agent channels")?;
    rows.map(|r| {
        let (trigger, channel_id, added_at, next_poll_at, last_poll_at, last_error) =
            r.sql("read channel")?;
        Ok(YoutubeChannelRecord {
            trigger_id: parse_id(&trigger)?,
            channel_id,
            added_at,
            next_poll_at,
            last_poll_at,
            last_error,
        })
    })
    .collect()
}

type ChannelRow = (String, String, i64, i64, Option<i64>, Option<String>);

fn channel_row(r: &Row) -> super::Result<ChannelRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

type ClaimRow = (
    String,
    String,
    String,
    String,
    bool,
    String,
    Option<String>,
    i64,
);

pub fn claim<C: Db>(
    tx: &C,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> StoreResult<Vec<ClaimedChannel>> {
    // The due rows are locked (skipping rows another node is claiming), so
    // select and lease cannot interleave with another node's claim.
    let due: Vec<ClaimRow> = {
        let lock = C::DIALECT.skip_locked("c");
        let sql = format!(
                "SELECT c.trigger_id, t.user_id, c.agent_id, c.channel_id, c.primed, t.config, t.callback_url,
                        c.added_at
                 FROM youtube_channels c
                 JOIN triggers t ON t.id = c.trigger_id AND t.deleted_at IS NULL
                 JOIN agents a ON a.id = c.agent_id AND a.deleted_at IS NULL
                 WHERE c.next_poll_at <= ?1 AND (c.lease_until IS NULL OR c.lease_until < ?1)
                 ORDER BY c.next_poll_at LIMIT ?2
                 {lock}"
        );
        let mut stmt = tx.prepare_cached(&sql).sql("prepare due channels")?;
        stmt.query_map((now, limit), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .sql("due channels")?
        .collect::<super::Result<_>>()
        .sql("read due channels")?
    };
    let mut claimed = Vec::with_capacity(due.len());
    for (trigger, user, agent, channel_id, primed, config, callback_url, added_at) in due {
        tx.execute(
            "UPDATE youtube_channels SET lease_owner = ?3, lease_until = ?4
             WHERE agent_id = ?1 AND channel_id = ?2",
            (&agent, &channel_id, owner, lease_until),
        )
        .sql("lease channel")?;
        let TriggerKind::Youtube { filter } = from_json(&config)? else {
            continue;
        };
        claimed.push(ClaimedChannel {
            trigger_id: parse_id(&trigger)?,
            user_id: parse_id(&user)?,
            agent_id: parse_id(&agent)?,
            channel_id,
            primed,
            added_at,
            filter,
            callback_url,
        });
    }
    Ok(claimed)
}

pub fn unseen<C: Db>(
    conn: &C,
    agent: AgentId,
    channel_id: &str,
    video_ids: Vec<String>,
) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT 1 FROM youtube_videos WHERE agent_id = ?1 AND channel_id = ?2 AND video_id = ?3",
        )
        .sql("prepare seen video")?;
    let agent = agent.to_string();
    let mut unseen = Vec::new();
    for video in video_ids {
        if !stmt
            .exists((&agent, channel_id, &video))
            .sql("seen video")?
        {
            unseen.push(video);
        }
    }
    Ok(unseen)
}

/// Whether `owner` still holds the channel's lease (it was not removed or
/// taken over meanwhile).
fn holds_lease<C: Db>(tx: &C, agent: AgentId, channel_id: &str, owner: &str) -> StoreResult<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM youtube_channels WHERE agent_id = ?1 AND channel_id = ?2 AND lease_owner = ?3",
    )
    .sql("prepare channel lease")?
    .exists((agent.to_string(), channel_id, owner))
    .sql("channel lease")
}

pub fn record_video<C: Db>(tx: &C, v: &YoutubeVideo) -> StoreResult<bool> {
    if !holds_lease(tx, v.agent_id, &v.channel_id, &v.owner)? {
        return Ok(false);
    }
    let (outcome, reason, run) = match &v.outcome {
        VideoOutcome::Fired(run) => ("fired", None, Some(run.as_ref())),
        VideoOutcome::Skipped(why) => ("skipped", Some(why.as_str()), None),
    };
    let inserted = tx
        .execute(
            "INSERT INTO youtube_videos (agent_id, channel_id, video_id, outcome, reason, run_id, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            (
                v.agent_id.to_string(),
                &v.channel_id,
                &v.video_id,
                outcome,
                reason,
                run.map(|r| r.id.to_string()),
                v.at,
            ),
        )
        .sql("record video")?
        == 1;
    if inserted && let Some(run) = run {
        runs::insert_run(tx, run)?;
    }
    Ok(inserted)
}

pub fn finish_poll<C: Db>(tx: &C, p: &YoutubePoll) -> StoreResult<()> {
    let updated = tx
        .execute(
            "UPDATE youtube_channels
             SET last_poll_at = ?4, last_error = ?5, next_poll_at = ?6, primed = CASE WHEN ?7 > primed THEN ?7 ELSE primed END,
                 lease_owner = NULL, lease_until = NULL
             WHERE agent_id = ?1 AND channel_id = ?2 AND lease_owner = ?3",
            (
                p.agent_id.to_string(),
                &p.channel_id,
                &p.owner,
                p.at,
                &p.error,
                p.next_poll_at,
                p.baseline.is_some(),
            ),
        )
        .sql("finish poll")?;
    let Some(baseline) = p.baseline.as_ref().filter(|_| updated == 1) else {
        return Ok(());
    };
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO youtube_videos (agent_id, channel_id, video_id, outcome, seen_at)
             VALUES (?1, ?2, ?3, 'baseline', ?4) ON CONFLICT DO NOTHING",
        )
        .sql("prepare baseline")?;
    let agent = p.agent_id.to_string();
    for video in baseline {
        stmt.execute((&agent, &p.channel_id, video, p.at))
            .sql("record baseline video")?;
    }
    Ok(())
}
