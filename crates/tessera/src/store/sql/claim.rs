//! Claiming due deliveries, destination by destination: each destination
//! gets at most its room, half of it from the oldest due deliveries and half
//! from the newest, so a backlog and fresh events share its slots.
//!
//! Why not one query ordered by due time: behind a backlog of a million due
//! deliveries, a fresh event is a million rows down, and a query that skips
//! a saturated destination walks every one of its rows. Here every step is
//! an index seek on `deliveries_pending_by_destination` (destination, due
//! time), whatever the backlog.

use super::{Db, SqlContext, from_json, parse_id};
use crate::store::{ClaimLane, ClaimedDelivery, DestinationRoom, StoreResult};

/// Each destination with pending deliveries and its earliest due time: one
/// index seek per destination (a skip scan), not one row per delivery.
const DESTINATIONS: &str = "WITH RECURSIVE dest(destination) AS (
        SELECT MIN(destination) FROM webhook_deliveries WHERE status = 'pending'
        UNION ALL
        SELECT (SELECT MIN(w.destination) FROM webhook_deliveries w
                WHERE w.status = 'pending' AND w.destination > dest.destination)
        FROM dest WHERE dest.destination IS NOT NULL
    )
    SELECT destination, (SELECT MIN(w.next_attempt_at) FROM webhook_deliveries w
                         WHERE w.status = 'pending' AND w.destination = dest.destination)
    FROM dest WHERE destination IS NOT NULL";

pub fn claim<C: Db>(
    tx: &C,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
    room: &DestinationRoom,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let mut due: Vec<(String, i64)> = tx
        .prepare_cached(DESTINATIONS)
        .sql("prepare due destinations")?
        .query_map((), |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?)))
        .sql("due destinations")?
        .filter_map(|r| match r {
            Ok((d, Some(at))) if at <= now => Some(Ok((d, at))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<super::Result<_>>()
        .sql("read due destinations")?;
    // The destination waiting longest goes first when the batch is short.
    due.sort_by_key(|(_, at)| *at);
    let mut rows = Vec::new();
    for (destination, _) in due {
        let left = limit.saturating_sub(rows.len() as u32);
        if left == 0 {
            break;
        }
        // Saturated destinations (room 0) are skipped, so a dead receiver's
        // backlog can never fill a batch.
        let room = room
            .busy
            .get(&destination)
            .copied()
            .unwrap_or(room.per_destination.max(1))
            .min(left);
        if room == 0 {
            continue;
        }
        let lane = Lane {
            owner,
            now,
            lease_until,
            destination: &destination,
        };
        // An odd slot goes to either end by the clock's parity, so a claim
        // loop that only ever has room for one starves neither end.
        let oldest_share = room / 2 + (room % 2) * u32::from(now % 2 == 0);
        let oldest = lane.claim(tx, ClaimLane::Oldest, oldest_share)?;
        let rest = room - oldest.len() as u32;
        rows.extend(oldest);
        rows.extend(lane.claim(tx, ClaimLane::Newest, rest)?);
    }
    let mut event_stmt = tx
        .prepare_cached("SELECT body FROM webhook_events WHERE id = ?1")
        .sql("prepare read event")?;
    rows.into_iter()
        .map(|(row, lane)| {
            let body: String = event_stmt
                .query_row([&row.event_id], |r| r.get(0))
                .sql("read event")?;
            Ok(ClaimedDelivery {
                id: parse_id(&row.id)?,
                event_id: parse_id(&row.event_id)?,
                user_id: parse_id(&row.user_id)?,
                url: row.url,
                destination: row.destination,
                body: from_json(&body)?,
                attempt_count: row.attempt_count,
                attempts_allowed: row.attempts_allowed,
                lane,
            })
        })
        .collect()
}

/// One destination's claim.
struct Lane<'a> {
    owner: &'a str,
    now: i64,
    lease_until: i64,
    destination: &'a str,
}

/// A claimed delivery before its event body is read.
struct Row {
    id: String,
    event_id: String,
    user_id: String,
    url: String,
    attempt_count: u32,
    attempts_allowed: u32,
    destination: String,
}

impl Lane<'_> {
    /// Lease up to `n` due deliveries from one end of the destination's
    /// due deliveries: pending, due, not leased, and not waiting on an
    /// earlier event of the same run to the same URL.
    fn claim<C: Db>(&self, tx: &C, end: ClaimLane, n: u32) -> StoreResult<Vec<(Row, ClaimLane)>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let order = match end {
            ClaimLane::Oldest => "ASC",
            ClaimLane::Newest => "DESC",
        };
        // Ordered by due time alone, so the index gives the order (adding
        // `id` would sort every due row of the destination).
        let sql = format!(
            "WITH picked AS (
                SELECT d.id FROM webhook_deliveries d
                WHERE d.status = 'pending' AND d.destination = ?4 AND d.next_attempt_at <= ?2
                  AND (d.lease_until IS NULL OR d.lease_until < ?2)
                  AND (d.after_id IS NULL OR NOT EXISTS (
                        SELECT 1 FROM webhook_deliveries p WHERE p.id = d.after_id AND p.status = 'pending'))
                ORDER BY d.next_attempt_at {order} LIMIT ?5
                {lock}
             )
             UPDATE webhook_deliveries SET lease_owner = ?1, lease_until = ?3
             WHERE id IN (SELECT id FROM picked)
             RETURNING id, event_id, user_id, url, attempt_count, attempts_allowed, destination",
            lock = C::DIALECT.skip_locked("d"),
        );
        tx.prepare_cached(&sql)
            .sql("prepare claim deliveries")?
            .query_map(
                (self.owner, self.now, self.lease_until, self.destination, n),
                |r| {
                    Ok((
                        Row {
                            id: r.get(0)?,
                            event_id: r.get(1)?,
                            user_id: r.get(2)?,
                            url: r.get(3)?,
                            attempt_count: r.get(4)?,
                            attempts_allowed: r.get(5)?,
                            destination: r.get(6)?,
                        },
                        end,
                    ))
                },
            )
            .sql("claim deliveries")?
            .collect::<super::Result<Vec<_>>>()
            .sql("read claimed deliveries")
    }
}
