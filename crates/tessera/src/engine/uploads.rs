//! Abandoned uploads: an upload URL that was never finalized keeps a row and
//! maybe a file; both are removed once the upload retention period has passed
//! since its URL expired (`TESSERA_UPLOAD_RETENTION_HOURS`). Finalized uploads stay: runs use them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::Services;

/// Most uploads removed per sweep (the next sweep takes the rest).
const SWEEP_BATCH: u32 = 500;
/// The longest gap between two sweeps.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Sweep until shutdown. Several nodes may sweep at once: removing a row
/// is conditional, so each upload is removed once and a finalized one never.
pub async fn sweep_abandoned(services: Services, shutdown: CancellationToken) {
    let retention = services.config.upload_retention;
    let every = (retention / 4)
        .min(MAX_SWEEP_INTERVAL)
        .max(services.config.poll_interval);
    loop {
        if let Err(e) = sweep_once(&services, retention).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "cleaning up abandoned uploads failed"
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One sweep; returns how many uploads were removed.
pub async fn sweep_once(services: &Services, retention: Duration) -> anyhow::Result<usize> {
    let now = chrono::Utc::now().timestamp_millis();
    let expired_before = now - retention.as_millis() as i64;
    let stale = services
        .store
        .stale_uploads(expired_before, SWEEP_BATCH)
        .await?;
    let mut removed = 0;
    for upload in stale {
        if services.store.delete_unfinalized_upload(upload.id).await? {
            // The form's file, and any a finalize was checking when it died.
            match upload_folder(&upload.object_key) {
                Some(folder) => services.objects.delete_prefix(folder, None).await?,
                None => services.objects.delete(&upload.object_key).await?,
            }
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(uploads = removed, "removed abandoned uploads");
    }
    // Beside a finalized upload's file, a form posted again before its URL
    // expired (S3 cannot refuse it) may have left a file nothing uses: once
    // no form can arrive any more (the same retention after the expiry as
    // abandoned uploads), the folder keeps only the upload's file.
    for upload in services
        .store
        .untidied_uploads(expired_before, SWEEP_BATCH)
        .await?
    {
        if let Some(folder) = upload_folder(&upload.object_key) {
            services
                .objects
                .delete_prefix(folder, Some(&upload.object_key))
                .await?;
        }
        services.store.mark_upload_tidied(upload.id, now).await?;
    }
    Ok(removed)
}

/// The folder of an upload's objects, `uploads/{user}/{video}`: every key
/// an upload writes lives under it. `None` for a key of another shape.
fn upload_folder(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("uploads/")?;
    let mut parts = rest.splitn(3, '/');
    let (user, video, _file) = (parts.next()?, parts.next()?, parts.next()?);
    if user.is_empty() || video.is_empty() {
        return None;
    }
    Some(&key[.."uploads/".len() + user.len() + 1 + video.len()])
}

#[cfg(test)]
mod tests {
    use super::upload_folder;

    #[test]
    fn an_uploads_folder_is_its_user_and_video() {
        assert_eq!(
            upload_folder("uploads/u1/v1/video.mp4"),
            Some("uploads/u1/v1")
        );
        assert_eq!(
            upload_folder("uploads/u1/v1/checked-0a/video"),
            Some("uploads/u1/v1")
        );
        for odd in [
            "uploads/u1/video",
            "uploads//v1/x",
            "uploads/u1//x",
            "runs/r/in/video",
            "uploads",
        ] {
            assert_eq!(upload_folder(odd), None, "{odd}");
        }
    }
}
