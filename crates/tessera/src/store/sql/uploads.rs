//! Uploads: announced, received, finalized, and cleaned up when abandoned.

use super::{Db, OptionalExtension, Row, SqlContext, parse_id};
use crate::domain::ids::{UserId, VideoId};
use crate::store::{StoreError, StoreResult, UploadMedia, UploadRecord, UploadStatus};

const COLUMNS: &str = "id, user_id, object_key, filename, content_type, status, size_bytes, \
     duration_ms, width, height, created_at, expires_at, uploaded_at, finalized_at";

fn record(r: &Row) -> StoreResult<UploadRecord> {
    let read = || -> super::Result<_> {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<u64>>(6)?,
            (
                r.get::<_, Option<u64>>(7)?,
                r.get::<_, Option<u32>>(8)?,
                r.get::<_, Option<u32>>(9)?,
            ),
        ))
    };
    let (id, user, status, size_bytes, media) = read().sql("read upload")?;
    let status = UploadStatus::parse(&status)
        .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("corrupt upload status {status:?}")))?;
    let media = match media {
        (Some(duration_ms), Some(width), Some(height)) => Some(UploadMedia {
            duration_ms,
            width,
            height,
        }),
        _ => None,
    };
    Ok(UploadRecord {
        id: parse_id(&id)?,
        user_id: parse_id(&user)?,
        object_key: r.get(2).sql("read upload")?,
        filename: r.get(3).sql("read upload")?,
        content_type: r.get(4).sql("read upload")?,
        status,
        size_bytes,
        media,
        created_at: r.get(10).sql("read upload")?,
        expires_at: r.get(11).sql("read upload")?,
        uploaded_at: r.get(12).sql("read upload")?,
        finalized_at: r.get(13).sql("read upload")?,
    })
}

pub fn insert<C: Db>(tx: &C, u: &UploadRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO uploads (id, user_id, object_key, filename, content_type, status, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        (
            u.id.to_string(),
            u.user_id.to_string(),
            &u.object_key,
            &u.filename,
            &u.content_type,
            u.status.as_str(),
            u.created_at,
            u.expires_at,
        ),
    )
    .sql("insert upload")?;
    Ok(())
}

pub fn get<C: Db>(conn: &C, id: VideoId) -> StoreResult<Option<UploadRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM uploads WHERE id = ?1"),
        [id.to_string()],
        |r| Ok(record(r)),
    )
    .optional()
    .sql("read upload")?
    .transpose()
}

/// The file arrived; `filename` (the form's, when `get_upload_url` named
/// none) is kept for the dashboard.
pub fn mark_uploaded<C: Db>(
    tx: &C,
    id: VideoId,
    size: u64,
    filename: Option<&str>,
    now: i64,
) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE uploads SET status = 'uploaded', size_bytes = ?2, uploaded_at = ?3,
                 filename = COALESCE(filename, ?4)
             WHERE id = ?1 AND status <> 'finalized'
               AND (finalizing_until IS NULL OR finalizing_until < ?3)",
            (id.to_string(), size, now, filename),
        )
        .sql("mark upload received")?;
    Ok(n == 1)
}

/// Take the finalize lease; `false` when the upload is finalized or
/// another call holds the lease.
pub fn begin_finalize<C: Db>(tx: &C, id: VideoId, now: i64, until: i64) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE uploads SET finalizing_until = ?3
             WHERE id = ?1 AND status <> 'finalized'
               AND (finalizing_until IS NULL OR finalizing_until < ?2)",
            (id.to_string(), now, until),
        )
        .sql("begin finalizing upload")?;
    Ok(n == 1)
}

pub fn end_finalize<C: Db>(tx: &C, id: VideoId) -> StoreResult<()> {
    tx.execute(
        "UPDATE uploads SET finalizing_until = NULL
         WHERE id = ?1 AND finalizing_until IS NOT NULL",
        [id.to_string()],
    )
    .sql("end finalizing upload")?;
    Ok(())
}

pub fn reopen<C: Db>(tx: &C, id: VideoId) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE uploads SET status = 'pending', size_bytes = NULL, uploaded_at = NULL,
                 finalizing_until = NULL
             WHERE id = ?1 AND status <> 'finalized'",
            [id.to_string()],
        )
        .sql("reopen upload")?;
    Ok(n == 1)
}

pub fn finalize<C: Db>(
    tx: &C,
    id: VideoId,
    object_key: &str,
    size: u64,
    media: UploadMedia,
    now: i64,
) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE uploads SET status = 'finalized', size_bytes = ?2, duration_ms = ?3,
                 width = ?4, height = ?5, finalized_at = ?6, object_key = ?7,
                 finalizing_until = NULL
             WHERE id = ?1 AND status <> 'finalized'",
            (
                id.to_string(),
                size,
                media.duration_ms,
                media.width,
                media.height,
                now,
                object_key,
            ),
        )
        .sql("finalize upload")?;
    Ok(n == 1)
}

pub fn of_user<C: Db>(conn: &C, user: UserId, limit: u32) -> StoreResult<Vec<UploadRecord>> {
    let rows = conn
        .query_values(
            &format!("SELECT {COLUMNS} FROM uploads WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2"),
            super::Params::values((user.to_string(), limit)),
        )
        .sql("list uploads")?;
    rows.iter().map(record).collect()
}

pub fn stale<C: Db>(conn: &C, expired_before: i64, limit: u32) -> StoreResult<Vec<UploadRecord>> {
    let rows = conn
        .query_values(
            &format!(
                "SELECT {COLUMNS} FROM uploads
                 WHERE status <> 'finalized' AND expires_at < ?1
                 ORDER BY expires_at LIMIT ?2"
            ),
            super::Params::values((expired_before, limit)),
        )
        .sql("find abandoned uploads")?;
    rows.iter().map(record).collect()
}

pub fn untidied<C: Db>(
    conn: &C,
    expired_before: i64,
    limit: u32,
) -> StoreResult<Vec<UploadRecord>> {
    let rows = conn
        .query_values(
            &format!(
                "SELECT {COLUMNS} FROM uploads
                 WHERE status = 'finalized' AND expires_at < ?1 AND tidied_at IS NULL
                 ORDER BY expires_at LIMIT ?2"
            ),
            super::Params::values((expired_before, limit)),
        )
        .sql("find untidied uploads")?;
    rows.iter().map(record).collect()
}

pub fn mark_tidied<C: Db>(tx: &C, id: VideoId, now: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE uploads SET tidied_at = ?2 WHERE id = ?1",
        (id.to_string(), now),
    )
    .sql("mark upload tidied")?;
    Ok(())
}

pub fn delete_unfinalized<C: Db>(tx: &C, id: VideoId) -> StoreResult<bool> {
    let n = tx
        .execute(
            "DELETE FROM uploads WHERE id = ?1 AND status <> 'finalized'",
            [id.to_string()],
        )
        .sql("delete upload")?;
    Ok(n == 1)
}
