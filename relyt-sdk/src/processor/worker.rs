//! The background tasks: one upload task per open file, an age timer per file, and the importers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{Mutex, OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

use super::{FileMsg, FrozenFile, Inner};
use crate::checkpoint::{self, FileState};
use crate::error::Result;
use crate::import::postgres::import_rows;
use crate::staging::{MultipartUpload, StagedObject};

/// Uploads one file as its parts arrive, then hands it to the lane's import queue.
pub(super) async fn run_file(
    inner: Arc<Inner>,
    no: u64,
    key: String,
    lane: usize,
    parts: mpsc::Receiver<FileMsg>,
    permit: OwnedSemaphorePermit,
) {
    let span = tracing::debug_span!("stage_file", process_id = %inner.process_id, file_no = no);
    let result = upload(&inner, no, &key, parts).instrument(span).await;
    inner.counters.files_open.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(Some((object, rows))) => {
            inner.counters.files_waiting.fetch_add(1, Ordering::Relaxed);
            let queue = &inner.queues[lane % inner.queues.len()];
            let file = FrozenFile {
                no,
                object,
                rows,
                _permit: permit,
            };
            if queue.send(file).is_err() {
                // The importers are gone (shut down or dropped): the file stays FROZEN.
                inner.settle(no);
            }
        }
        Ok(None) => inner.settle(no),
        Err(e) => {
            let message = e.to_string();
            if let Err(e2) =
                checkpoint::file_failed(&inner.pool, inner.process_id, no, &message).await
            {
                tracing::warn!(error = %e2, "could not mark the file ERROR");
            }
            inner.counters.files_failed.fetch_add(1, Ordering::Relaxed);
            inner.fail(e);
            inner.settle(no);
        }
    }
}

/// The upload itself. `Ok(None)` when the processor went away before the file was finished.
async fn upload(
    inner: &Inner,
    no: u64,
    key: &str,
    mut parts: mpsc::Receiver<FileMsg>,
) -> Result<Option<(StagedObject, u64)>> {
    let retry = inner.settings.retry;
    retry
        .run("recording a new file", |_| {
            checkpoint::file_created(&inner.pool, inner.process_id, no, key)
        })
        .await?;
    // The first part is held back: a file of one part is written with one PutObject.
    let mut first: Option<Bytes> = None;
    let mut multipart: Option<MultipartUpload> = None;
    let (rows, bytes) = loop {
        let msg = tokio::select! {
            msg = parts.recv() => msg,
            _ = inner.cancel.cancelled() => None,
        };
        match msg {
            Some(FileMsg::Part(part)) => {
                inner
                    .counters
                    .bytes_staged
                    .fetch_add(part.len() as u64, Ordering::Relaxed);
                match (&mut multipart, first.take()) {
                    (Some(upload), _) => upload.put_part(part).await?,
                    (None, None) => first = Some(part),
                    (None, Some(held)) => {
                        let mut upload = inner.stager.start_upload(key).await?;
                        upload.put_part(held).await?;
                        upload.put_part(part).await?;
                        multipart = Some(upload);
                    }
                }
            }
            Some(FileMsg::Finish { rows, bytes }) => break (rows, bytes),
            None => {
                if let Some(upload) = multipart {
                    let _ = upload.abort().await;
                }
                return Ok(None);
            }
        }
    };
    let object = match multipart {
        Some(upload) => upload.complete().await?,
        None => inner.stager.put(key, first.unwrap_or_default()).await?,
    };
    retry
        .run("marking a file FROZEN", |_| {
            checkpoint::file_frozen(&inner.pool, inner.process_id, no, rows, bytes)
        })
        .await?;
    tracing::debug!(rows, bytes, key, "file staged");
    Ok(Some((object, rows)))
}

/// Freezes file `no` of `lane` once it is `max_file_age` old, unless it froze before.
pub(super) async fn age_timer(inner: Arc<Inner>, lane: usize, no: u64) {
    tokio::select! {
        _ = tokio::time::sleep(inner.settings.max_file_age) => inner.freeze_if_open(lane, no).await,
        _ = inner.cancel.cancelled() => {}
    }
}

/// Takes frozen files from its queue and imports them, one at a time.
pub(super) async fn run_importer(
    inner: Arc<Inner>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<FrozenFile>>>,
) {
    loop {
        let next = {
            let mut queue = queue.lock().await;
            tokio::select! {
                file = queue.recv() => file,
                _ = inner.cancel.cancelled() => None,
            }
        };
        let Some(file) = next else { break };
        inner.counters.files_waiting.fetch_sub(1, Ordering::Relaxed);
        if inner.failure().is_some() {
            // After a failure nothing more is imported: the file stays FROZEN for a resume.
            inner.settle(file.no);
            continue;
        }
        let span =
            tracing::debug_span!("import_file", process_id = %inner.process_id, file_no = file.no);
        let what = format!("importing file {}", file.no);
        let result = inner
            .settings
            .retry
            .run(&what, |_| import(&inner, &file))
            .instrument(span)
            .await;
        match result {
            Ok(()) => {
                inner
                    .counters
                    .imported
                    .fetch_add(file.rows, Ordering::AcqRel);
                inner
                    .counters
                    .files_imported
                    .fetch_add(1, Ordering::Relaxed);
                if !inner.settings.keep_staged_files
                    && let Err(e) = inner.stager.delete(&file.object.key).await
                {
                    tracing::warn!(error = %e, "could not delete an imported staged object");
                }
            }
            Err(e) => {
                let message = e.to_string();
                if let Err(e2) =
                    checkpoint::file_failed(&inner.pool, inner.process_id, file.no, &message).await
                {
                    tracing::warn!(error = %e2, "could not mark the file ERROR");
                }
                inner.counters.files_failed.fetch_add(1, Ordering::Relaxed);
                inner.fail(e);
            }
        }
        inner.settle(file.no);
    }
}

/// Imports one file exactly once: its rows and its IMPORTED state commit in one transaction, and
/// a file already IMPORTED is left alone.
async fn import(inner: &Inner, file: &FrozenFile) -> Result<()> {
    let db = |what: &'static str| move |e| crate::error::Error::database(what, e);
    checkpoint::file_importing(&inner.pool, inner.process_id, file.no).await?;
    let mut tx = inner.pool.begin().await.map_err(db("starting an import"))?;
    if checkpoint::lock_file(&mut tx, inner.process_id, file.no).await? == FileState::Imported {
        tracing::debug!("file already imported");
        return Ok(());
    }
    let rows = import_rows(
        &mut tx,
        &inner.stager,
        &file.object,
        &inner.target,
        file.no,
        &inner.direct,
    )
    .await?;
    if rows != file.rows {
        tracing::warn!(
            expected = file.rows,
            loaded = rows,
            "row count of the import differs from the file's"
        );
    }
    checkpoint::mark_imported(&mut tx, inner.process_id, file.no, rows).await?;
    tx.commit().await.map_err(db("committing an import"))?;
    tracing::debug!(rows, "file imported");
    Ok(())
}
