//! Rendering one plan of one job and storing what it produced.

use std::collections::HashMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::Engine;
use super::ingest::LocalInput;
use crate::domain::graph::RenderPlan;
use crate::domain::ids::RenderId;
use crate::domain::payload::{FileRef, OutputRef};
use crate::media::{InputFile, MediaError, output_extension};
use crate::store::RunRecord;

impl Engine {
    /// Render `plan` for one job (its inputs in source order) and store each
    /// output with its thumbnail. Errors are messages for the user.
    pub(super) async fn render_one(
        &self,
        run: &RunRecord,
        inputs: &[&LocalInput],
        plan: &RenderPlan,
        dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<Vec<OutputRef>, String> {
        let lead = inputs
            .first()
            .ok_or("the job has no inputs")?
            .input
            .input_index;
        // Each input feeds its `video_input` slot, trimmed to its clip window.
        let files: HashMap<String, InputFile<'_>> = inputs
            .iter()
            .map(|local| {
                let source = &run.sources[local.input.input_index];
                let file = InputFile {
                    path: &local.path,
                    probe: &local.probe,
                    start_ms: source.clip_start_ms.unwrap_or(0),
                    end_ms: source.clip_end_ms,
                };
                (source.slot.clone(), file)
            })
            .collect();
        let job = std::time::Instant::now();
        let rendered = self
            .inner
            .media
            .render(plan, &files, dir, cancel)
            .await
            .map_err(|e: MediaError| e.to_string())?;
        self.inner.metrics.ffmpeg_job(job.elapsed().as_secs_f64());
        let mut outputs = Vec::with_capacity(rendered.len());
        for out in rendered {
            outputs.push(
                self.store_output(run, lead, plan, RenderId::new(), &out, dir)
                    .await?,
            );
        }
        Ok(outputs)
    }

    /// Thumbnail and upload one rendered file.
    async fn store_output(
        &self,
        run: &RunRecord,
        input_index: usize,
        plan: &RenderPlan,
        id: RenderId,
        out: &Path,
        dir: &Path,
    ) -> Result<OutputRef, String> {
        let media = &self.inner.media;
        let ext = output_extension(&plan.render);
        let probe = media
            .probe_output(out)
            .await
            .map_err(|e| format!("the rendered file is unreadable: {e}"))?;
        let thumb = dir.join(format!("output-{id}.jpg"));
        media
            .thumbnail(out, &probe, &thumb)
            .await
            .map_err(|e| e.to_string())?;
        let files = FileRef {
            video_key: format!("runs/{}/outputs/{id}.{ext}", run.id),
            thumbnail_key: format!("runs/{}/outputs/{id}.jpg", run.id),
        };
        self.store_file(&files.video_key, out).await?;
        self.store_file(&files.thumbnail_key, &thumb).await?;
        let _ = tokio::fs::remove_file(out).await;
        let _ = tokio::fs::remove_file(&thumb).await;
        Ok(OutputRef {
            id,
            files,
            completed_at: chrono::Utc::now(),
            input_index,
            render_node: plan.render_node.clone(),
        })
    }
}
