//! The background tasks: one upload task per open file, an age timer per file, and the importers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{Mutex, OwnedSemaphorePermit, mpsc, oneshot};
use tracing::Instrument;

use super::{FileMsg, FrozenFile, Inner};
use crate::checkpoint::{self, FileState};
use crate::error::{Error, Result};
use crate::import::postgres::import_rows;
use crate::staging::{MultipartUpload, StagedObject};

/// Keeps a lane's files in order on their way to the import queue.
pub(super) struct QueueOrder {
    /// Resolves when the lane's previous file was queued (or given up).
    pub(super) previous: Option<oneshot::Receiver<()>>,
    /// Signals that this file was queued (or given up); dropping it does too.
    pub(super) queued: oneshot::Sender<()>,
}

/// Uploads one file as its parts arrive, then hands it to the lane's import queue, after the
/// lane's previous file.
pub(super) async fn run_file(
    inner: Arc<Inner>,
    no: u64,
    key: String,
    lane: usize,
    parts: mpsc::Receiver<FileMsg>,
    permit: OwnedSemaphorePermit,
    order: QueueOrder,
) {
    let span = tracing::debug_span!("stage_file", process_id = %inner.process_id, file_no = no);
    let result = upload(&inner, no, &key, parts).instrument(span).await;
    inner.counters.files_open.fetch_sub(1, Ordering::Relaxed);
    if let Some(previous) = order.previous {
        // An error means the previous file's task ended without queueing: nothing to wait for.
        let _ = previous.await;
    }
    match result {
        Ok(Some((object, rows))) => {
            inner.counters.files_waiting.fetch_add(1, Ordering::Relaxed);
            let queue = &inner.queues[lane % inner.queues.len()];
            let file = FrozenFile {
                no,
                object,
                rows,
                _permit: Some(permit),
            };
            if queue.send(file).is_err() {
                // The importers are gone (shut down or dropped): the file stays FROZEN.
                inner.settle(no);
            }
            let _ = order.queued.send(());
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
                let sent = match (&mut multipart, first.take()) {
                    (Some(upload), _) => upload.put_part(part).await,
                    (None, None) => {
                        first = Some(part);
                        Ok(())
                    }
                    (None, Some(held)) => {
                        let upload = multipart.insert(inner.stager.start_upload(key).await?);
                        match upload.put_part(held).await {
                            Ok(()) => upload.put_part(part).await,
                            Err(e) => Err(e),
                        }
                    }
                };
                if let Err(e) = sent {
                    // Free the parts already sent; the error is what matters.
                    if let Some(upload) = multipart.take() {
                        let _ = upload.abort().await;
                    }
                    return Err(e);
                }
            }
            Some(FileMsg::Finish { rows, bytes }) => break (rows, bytes),
            None => {
                if let Some(upload) = multipart {
                    let _ = upload.abort().await;
                }
                if inner.cancel.is_cancelled() {
                    return Ok(None);
                }
                return Err(Error::Config(format!(
                    "file {no} was abandoned before it was complete: an insert() or flush() \
                     future was dropped (cancelled, e.g. by a timeout) while it handed the file \
                     a part; rows of that file are lost. Do not cancel insert(): bound waits \
                     with max_pending_files instead"
                )));
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
            Ok(rows) => {
                // Rejected rows were counted when their budget was reserved.
                inner.counters.imported.fetch_add(rows, Ordering::AcqRel);
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

/// Imports one file exactly once: its rows, its rejected records and its IMPORTED state commit in
/// one transaction, and a file already IMPORTED is left alone. Returns the rows loaded.
async fn import(inner: &Inner, file: &FrozenFile) -> Result<u64> {
    let db = |what: &'static str| move |e| Error::database(what, e);
    checkpoint::file_importing(&inner.pool, inner.process_id, file.no).await?;
    let mut tx = inner.pool.begin().await.map_err(db("starting an import"))?;
    let (state, stored_rows, stored_rejects) =
        checkpoint::lock_file(&mut tx, inner.process_id, file.no, inner.instance).await?;
    if state == FileState::Imported {
        // Imported earlier: by this import, whose commit reply was lost (the counts are ours:
        // its rejects were given back to the budget and are counted again here), or by another
        // processor resuming the same job (zeros). Either way it is not imported again.
        tracing::debug!("file already imported");
        inner
            .counters
            .rejected
            .fetch_add(stored_rejects, Ordering::AcqRel);
        return Ok(stored_rows);
    }
    let outcome = match import_rows(
        &mut tx,
        &inner.stager,
        &file.object,
        &inner.target,
        file.no,
        &inner.direct,
        inner.reject_budget_left(),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(Error::TooManyRejects {
            first, rejected, ..
        }) => {
            // More than the budget left: the file is rolled back whole and the job fails with
            // the job-wide count.
            return Err(inner.over_budget(rejected, &first));
        }
        Err(e) => return Err(e),
    };
    let rejected = outcome.rejects.len() as u64;
    if rejected > 0 {
        let first: Vec<String> = outcome
            .rejects
            .iter()
            .take(5)
            .map(|r| {
                format!(
                    "file {} line {}: {}",
                    file.no,
                    r.line_no.unwrap_or_default(),
                    r.message
                )
            })
            .collect();
        inner.reserve_rejects(rejected, &first)?;
        if let Err(e) =
            checkpoint::record_rejects(&mut tx, inner.process_id, &outcome.rejects).await
        {
            inner.release_rejects(rejected);
            return Err(e);
        }
        tracing::warn!(
            rejected,
            "records rejected for data errors; the rest of the file loads"
        );
    }
    if outcome.rows + rejected != file.rows {
        tracing::warn!(
            expected = file.rows,
            loaded = outcome.rows,
            rejected,
            "row count of the import differs from the file's"
        );
    }
    let committed = async {
        checkpoint::mark_imported(
            &mut tx,
            inner.process_id,
            file.no,
            outcome.rows,
            rejected,
            inner.instance,
        )
        .await?;
        tx.commit().await.map_err(db("committing an import"))
    }
    .await;
    if let Err(e) = committed {
        inner.release_rejects(rejected);
        return Err(e);
    }
    tracing::debug!(rows = outcome.rows, rejected, "file imported");
    Ok(outcome.rows)
}

/// Imports the files a stopped run of the job left complete on S3, one at a time in file order
/// (so that for keyed tables the row written last still wins), each exactly once.
pub(super) async fn recover(
    inner: &Inner,
    left: Vec<checkpoint::LeftFile>,
) -> Result<super::ResumeReport> {
    let mut report = super::ResumeReport::default();
    for file in left {
        if file.state == FileState::Created {
            report.files_lost += 1;
            let message = "lost: the process stopped before the file was complete on S3";
            checkpoint::file_failed(&inner.pool, inner.process_id, file.file_no, message).await?;
            continue;
        }
        let frozen = FrozenFile {
            no: file.file_no,
            object: StagedObject {
                key: file.key,
                size: file.bytes,
            },
            rows: file.rows,
            _permit: None,
        };
        let span = tracing::debug_span!("recover_file", process_id = %inner.process_id, file_no = frozen.no);
        let what = format!("recovering file {}", frozen.no);
        let before = inner.counters.rejected.load(Ordering::Acquire);
        let rows = inner
            .settings
            .retry
            .run(&what, |_| import(inner, &frozen))
            .instrument(span)
            .await?;
        let rejected = inner.counters.rejected.load(Ordering::Acquire) - before;
        // Rows of recovered files count as accepted by this processor too, so that
        // accepted = imported + rejected + pending still holds.
        inner
            .counters
            .accepted
            .fetch_add(rows + rejected, Ordering::AcqRel);
        inner.counters.imported.fetch_add(rows, Ordering::AcqRel);
        inner
            .counters
            .files_imported
            .fetch_add(1, Ordering::Relaxed);
        report.files_recovered += 1;
        report.rows_recovered += rows;
        report.rows_rejected += rejected;
        if !inner.settings.keep_staged_files
            && let Err(e) = inner.stager.delete(&frozen.object.key).await
        {
            tracing::warn!(error = %e, "could not delete a recovered staged object");
        }
    }
    Ok(report)
}
