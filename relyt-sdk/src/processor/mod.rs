//! The processor: a `Clone` handle that buffers inserts into files, stages them on S3 and imports
//! them in the background.
//!
//! ```text
//! insert ─encode─▶ lane's open file ─part─▶ file task (S3 upload) ─frozen─▶ import queue ─▶ importer
//!          (caller's task, no I/O      (bounded channel:               (one queue per lane for
//!           unless a part is full)      backpressure)                   keyed tables)
//! ```
//!
//! Rows are encoded in the caller's task under one lock, so the order of rows is the order of
//! `insert` calls. A table with a key gets one lane per importer and each row goes to the lane of
//! its key's hash: every key is always loaded by the same importer, in insert order, so the row
//! inserted last wins without any cross-importer ordering, and importers never wait on each
//! other's row locks.

mod builder;
mod catalog;
mod worker;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use builder::Builder;
use builder::Settings;

use crate::checkpoint::{self, Reject};
use crate::config::{ConflictMode, S3Config};
use crate::encode::CsvEncoder;
use crate::error::{EncodeError, Error, Result};
use crate::import::ImportMethod;
use crate::import::postgres::Target;
use crate::record::RelytRecord;
use crate::sql::TableName;
use crate::staging::{StagedObject, Stager};

/// Loads rows of `T` into one table through files staged on S3.
///
/// The handle is cheap to clone and every clone feeds the same files; insert from as many tasks
/// as you like. Call [`shutdown`](Self::shutdown) when done: dropping the last handle without it
/// stops the background work and logs a warning (staged files are kept, never deleted).
///
/// ```no_run
/// # async fn demo() -> relyt_sdk::Result<()> {
/// use relyt_sdk::{BulkProcessor, RelytRecord, S3Config};
///
/// #[derive(RelytRecord)]
/// struct Event { #[relyt(key)] id: i64, name: String }
///
/// let processor = BulkProcessor::<Event>::builder()
///     .database_url("postgres://loader@db/warehouse")
///     .table("public.events")
///     .s3(S3Config::new("staging-bucket").with_prefix("loads"))
///     .batch_size(100_000)
///     .concurrency(4)
///     .build()
///     .await?;
/// processor.insert(&[Event { id: 1, name: "a".into() }]).await?;
/// let stats = processor.shutdown().await?;
/// assert_eq!(stats.rows_imported, 1);
/// # Ok(()) }
/// ```
pub struct BulkProcessor<T> {
    inner: Arc<Inner>,
    _guard: Arc<DropGuard>,
    _record: PhantomData<fn(&T)>,
}

impl<T> Clone for BulkProcessor<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _guard: self._guard.clone(),
            _record: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for BulkProcessor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkProcessor")
            .field("process_id", &self.inner.process_id)
            .field("table", &self.inner.target.table.to_string())
            .finish_non_exhaustive()
    }
}

/// A snapshot of a processor's progress. `rows_accepted = rows_imported + rows_rejected +
/// rows_pending` holds at every moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The processor's id (also the S3 key prefix of its files and its checkpoint row).
    pub process_id: Uuid,
    /// Rows handed to `insert`.
    pub rows_accepted: u64,
    /// Rows committed in the table.
    pub rows_imported: u64,
    /// Rows rejected (they count against `max_error_records`).
    pub rows_rejected: u64,
    /// Rows accepted but not yet imported or rejected.
    pub rows_pending: u64,
    /// Files being written and uploaded.
    pub files_open: u64,
    /// Files complete on S3, waiting for an importer or being imported.
    pub files_waiting: u64,
    /// Files imported.
    pub files_imported: u64,
    /// Files whose import failed.
    pub files_failed: u64,
    /// Bytes uploaded to S3.
    pub bytes_staged: u64,
    /// How long the oldest file not yet imported has existed.
    pub oldest_pending_age: Option<Duration>,
}

impl<T: RelytRecord + Send + Sync + 'static> BulkProcessor<T> {
    /// Starts configuring a processor.
    pub fn builder() -> Builder<T> {
        Builder::new()
    }

    /// The processor's id: its checkpoint row in `relyt_sys` and its S3 key prefix.
    pub fn process_id(&self) -> Uuid {
        self.inner.process_id
    }

    /// Buffers rows. They are encoded into the open file before this returns; there is no
    /// database or S3 round trip unless a part is full (then it waits for the upload channel) or
    /// the file limit is reached (then it waits for an import: backpressure).
    ///
    /// A row that cannot be encoded (a NUL byte in text, a `u64` past `bigint`) is rejected and
    /// counted against `max_error_records`; past that budget the processor fails.
    pub async fn insert(&self, rows: &[T]) -> Result<()> {
        self.insert_iter(rows).await
    }

    /// Like [`insert`](Self::insert), for any iterator of rows or references to rows.
    pub async fn insert_iter<I>(&self, rows: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let inner = &self.inner;
        inner.check_usable()?;
        let mut rejects = Vec::new();
        {
            let mut guard = inner.lanes.lock().await;
            // Again under the lock: shutdown sets `closed` holding it, so no row gets in after
            // shutdown's flush has frozen the files.
            inner.check_usable()?;
            let lanes = &mut *guard;
            let n = lanes.files.len();
            for row in rows {
                let row = row.borrow();
                // Counted before its file can be imported, so that accepted >= imported always.
                inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                // One lane with an open file: encode straight into it (a failed record is rolled
                // back by the encoder). Otherwise encode into `line` first: its key picks the
                // lane, or the file it goes to is not open yet.
                if n == 1
                    && let Some(file) = lanes.files[0].as_mut()
                {
                    let before = file.enc.len();
                    match file.enc.encode(row) {
                        Ok(()) => {
                            let len = file.enc.len() - before;
                            inner.row_added(lanes, 0, len).await?;
                        }
                        Err(e) => rejects.push(e),
                    }
                    continue;
                }
                lanes.line.clear();
                let encoded = if n > 1 {
                    lanes.line.encode_with_offsets(row, &mut lanes.offsets)
                } else {
                    lanes.line.encode(row)
                };
                if let Err(e) = encoded {
                    rejects.push(e);
                    continue;
                }
                let lane = if n > 1 {
                    lanes.lane_of_line(&inner.key_index)
                } else {
                    0
                };
                inner.append(lanes, lane).await?;
            }
            if !rejects.is_empty() {
                // Still under the lock: a flush that starts after this insert sees the rejects
                // counted.
                inner.reject_unencodable(rejects).await?;
            }
        }
        Ok(())
    }

    /// Freezes the open files and waits until every row accepted before the call is committed
    /// in the table (or rejected within budget). Completion is signalled by the importers; there
    /// is no polling.
    pub async fn flush(&self) -> Result<Stats> {
        self.inner.flush().await
    }

    /// Flushes, marks the job COMPLETED, stops the background tasks and (unless
    /// `keep_staged_files`) has removed the imported objects. Idempotent: later calls return the
    /// same result. `insert` afterwards returns [`Error::Closed`].
    pub async fn shutdown(&self) -> Result<Stats> {
        self.inner.shutdown().await
    }

    /// A snapshot of the counters (no I/O).
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// What resuming the job did, for a processor built with
    /// [`Builder::resume`](crate::processor::Builder::resume).
    pub fn resumed(&self) -> Option<ResumeReport> {
        self.inner
            .resumed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) async fn start(start: Start) -> Result<Self> {
        let inner = Inner::start::<T>(start).await?;
        Ok(Self {
            _guard: Arc::new(DropGuard {
                inner: inner.clone(),
            }),
            inner,
            _record: PhantomData,
        })
    }
}

/// What the builder hands over.
pub(crate) struct Start {
    pub(crate) pool: sqlx::PgPool,
    pub(crate) s3: S3Config,
    pub(crate) table: TableName,
    pub(crate) keys: Vec<String>,
    pub(crate) conflict: ConflictMode,
    pub(crate) method: ImportMethod,
    pub(crate) settings: Settings,
    pub(crate) apply_migrations: bool,
    pub(crate) url_lifetime: Duration,
    pub(crate) resume: Option<Uuid>,
    pub(crate) relyt: Option<crate::import::external::RelytTarget>,
}

/// What resuming a job found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeReport {
    /// Files complete on S3 but not imported when the job stopped, now imported.
    pub files_recovered: u64,
    /// Rows of those files now in the table.
    pub rows_recovered: u64,
    /// Rows of those files rejected as bad records.
    pub rows_rejected: u64,
    /// Files that were still being written when the job stopped: their rows never reached S3
    /// and are lost (a durable local spool, planned, will close this gap).
    pub files_lost: u64,
}

/// Warns and stops the background work when the last handle goes without `shutdown`.
struct DropGuard {
    inner: Arc<Inner>,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.inner.closed.load(Ordering::Acquire) {
            let stats = self.inner.stats();
            tracing::warn!(
                process_id = %self.inner.process_id,
                rows_pending = stats.rows_pending,
                "BulkProcessor dropped without shutdown(): background work stops; rows in open \
                 files are lost, frozen files stay staged on S3 and in the checkpoint"
            );
        }
        self.inner.cancel.cancel();
    }
}

/// Counters behind [`Stats`].
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    imported: AtomicU64,
    rejected: AtomicU64,
    files_open: AtomicU64,
    files_waiting: AtomicU64,
    files_imported: AtomicU64,
    files_failed: AtomicU64,
    bytes_staged: AtomicU64,
}

/// Files not yet settled (imported or failed), and the first failure.
#[derive(Default)]
struct Pending {
    files: BTreeMap<u64, Instant>,
    failure: Option<Arc<Error>>,
    first_rejects: Vec<String>,
}

/// What flush waits on: the lowest file number not yet settled.
#[derive(Clone, Copy, Debug)]
struct Progress {
    lowest_pending: u64,
    failed: bool,
}

/// A part of an open file, or its end.
enum FileMsg {
    Part(Bytes),
    Finish { rows: u64, bytes: u64 },
}

/// A file being written.
struct OpenFile {
    no: u64,
    enc: CsvEncoder,
    rows: u64,
    bytes: u64,
    parts: mpsc::Sender<FileMsg>,
}

/// A file complete on S3, on its way to an importer.
struct FrozenFile {
    no: u64,
    object: StagedObject,
    rows: u64,
    /// Holds a place among the files in flight (none for files recovered by a resume).
    _permit: Option<OwnedSemaphorePermit>,
}

/// The insert side: one open file per lane, and the buffer a row is encoded into first.
struct Lanes {
    files: Vec<Option<OpenFile>>,
    /// Per lane, the signal that the lane's latest file reached its import queue: the next file
    /// waits for it, so a lane's files are imported in the order they were written even when a
    /// later, smaller file finishes uploading first.
    turn: Vec<Option<oneshot::Receiver<()>>>,
    line: CsvEncoder,
    offsets: Vec<usize>,
}

impl Lanes {
    /// The lane of the row in `line`: a hash of its key fields' text.
    fn lane_of_line(&self, key_index: &[usize]) -> usize {
        let bytes = self.line.as_bytes();
        let mut h = DefaultHasher::new();
        for &i in key_index {
            let start = self.offsets.get(i).copied().unwrap_or(0);
            // A field ends one byte before the next one starts (the comma), the last one before
            // the newline.
            let end = self
                .offsets
                .get(i + 1)
                .map_or(bytes.len().saturating_sub(1), |next| next - 1);
            h.write(bytes.get(start..end).unwrap_or_default());
            h.write_u8(0xff);
        }
        (h.finish() % self.files.len() as u64) as usize
    }
}

pub(crate) struct Inner {
    pool: sqlx::PgPool,
    stager: Stager,
    process_id: Uuid,
    /// This processor instance (several may resume one process id).
    instance: Uuid,
    target: Target,
    settings: Settings,
    /// Column positions of the key, for lane hashing.
    key_index: Vec<usize>,
    lanes: tokio::sync::Mutex<Lanes>,
    file_permits: Arc<Semaphore>,
    queues: Vec<mpsc::UnboundedSender<FrozenFile>>,
    next_file: AtomicU64,
    pending: Mutex<Pending>,
    progress: watch::Sender<Progress>,
    counters: Counters,
    closed: AtomicBool,
    /// Whether keyed imports still try a plain COPY first (see `import_rows`).
    direct: AtomicBool,
    cancel: CancellationToken,
    tracker: TaskTracker,
    shutdown: tokio::sync::Mutex<Option<Result<Stats, Arc<Error>>>>,
    resumed: Mutex<Option<ResumeReport>>,
}

impl Inner {
    async fn start<T: RelytRecord>(start: Start) -> Result<Arc<Self>> {
        let Start {
            pool,
            s3,
            table,
            keys,
            conflict,
            method,
            settings,
            apply_migrations,
            url_lifetime,
            resume,
            mut relyt,
        } = start;
        if apply_migrations {
            checkpoint::migrate(&pool).await?;
        }
        let stager = Stager::new(&s3).await?.with_retry(settings.retry);
        let (process_id, (left, rejected_before), first_file) = match resume {
            Some(id) => {
                let (left, rejected) =
                    checkpoint::take_over_job(&pool, id, &table.to_string()).await?;
                let last = checkpoint::last_file_no(&pool, id).await?;
                (id, (left, rejected), last + 1)
            }
            None => {
                let id = Uuid::new_v4();
                checkpoint::create_job(&pool, id, &table.to_string()).await?;
                (id, (Vec::new(), 0), 1)
            }
        };

        if let Some(relyt) = &mut relyt {
            relyt.tag = process_id.simple().to_string()[..12].to_owned();
        }
        let columns: Vec<&'static str> = T::COLUMNS.iter().map(|c| c.name()).collect();
        let key_index: Vec<usize> = keys
            .iter()
            .filter_map(|k| columns.iter().position(|c| c == k))
            .collect();
        // Keyed tables: one lane (and queue, and importer) per importer. Others: one lane whose
        // files any importer may take.
        let lanes = if key_index.is_empty() {
            1
        } else {
            settings.concurrency
        };
        let queue_count = lanes;
        let mut queues = Vec::with_capacity(queue_count);
        let mut receivers = Vec::with_capacity(queue_count);
        for _ in 0..queue_count {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(tx);
            receivers.push(Arc::new(tokio::sync::Mutex::new(rx)));
        }
        let (progress, _) = watch::channel(Progress {
            lowest_pending: u64::MAX,
            failed: false,
        });
        let inner = Arc::new(Self {
            pool,
            stager,
            process_id,
            instance: Uuid::new_v4(),
            target: Target {
                table,
                columns,
                keys,
                conflict,
                method,
                url_lifetime,
                relyt,
            },
            key_index,
            lanes: tokio::sync::Mutex::new(Lanes {
                files: (0..lanes).map(|_| None).collect(),
                turn: (0..lanes).map(|_| None).collect(),
                line: CsvEncoder::new(),
                offsets: Vec::new(),
            }),
            file_permits: Arc::new(Semaphore::new(settings.max_pending_files + lanes)),
            queues,
            next_file: AtomicU64::new(first_file),
            pending: Mutex::new(Pending::default()),
            progress,
            // A resumed job keeps the rejects it already has against its budget (and in
            // accepted, so that accepted = imported + rejected + pending holds).
            counters: Counters {
                rejected: AtomicU64::new(rejected_before),
                accepted: AtomicU64::new(rejected_before),
                ..Counters::default()
            },
            closed: AtomicBool::new(false),
            direct: AtomicBool::new(true),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            shutdown: tokio::sync::Mutex::new(None),
            resumed: Mutex::new(None),
            settings,
        });
        if resume.is_some() {
            let report = worker::recover(&inner, left).await?;
            tracing::info!(process_id = %inner.process_id, ?report, "job resumed");
            *inner.resumed.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
        }
        for i in 0..inner.settings.concurrency {
            let rx = receivers[i % receivers.len()].clone();
            inner.spawn_supervised("an importer", worker::run_importer(inner.clone(), rx));
        }
        tracing::info!(
            process_id = %inner.process_id,
            table = %inner.target.table,
            method = ?inner.target.method,
            conflict = ?inner.target.conflict,
            lanes,
            "bulk processor started"
        );
        Ok(inner)
    }

    /// Spawns a background task; should it panic (a bug), the processor fails with an error
    /// instead of waiting forever for the work the task would have done.
    fn spawn_supervised<F>(self: &Arc<Self>, what: &'static str, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        let inner = self.clone();
        self.tracker.spawn(async move {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                inner.fail(Error::Internal(format!(
                    "{what} of the bulk processor panicked (a bug in relyt-sdk: please report \
                     it); staged files are kept and the job can be resumed"
                )));
            }
        });
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(&self) -> Option<Arc<Error>> {
        self.pending().failure.clone()
    }

    fn check_usable(&self) -> Result<()> {
        if let Some(e) = self.failure() {
            return Err(Error::Failed(e));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Records the first failure and wakes every flush.
    fn fail(&self, err: Error) {
        tracing::error!(process_id = %self.process_id, error = %err, "bulk processor failed");
        let mut pending = self.pending();
        if pending.failure.is_none() {
            pending.failure = Some(Arc::new(err));
        }
        drop(pending);
        self.progress.send_modify(|p| p.failed = true);
    }

    /// Registers a new file as pending.
    fn register(&self, no: u64) {
        let mut pending = self.pending();
        pending.files.insert(no, Instant::now());
        // Published while the lock is held, so that concurrent changes publish in order.
        let lowest = pending.files.keys().next().copied().unwrap_or(u64::MAX);
        self.progress.send_modify(|p| p.lowest_pending = lowest);
    }

    /// Marks a file as settled (imported, failed or abandoned).
    fn settle(&self, no: u64) {
        let mut pending = self.pending();
        pending.files.remove(&no);
        // Published while the lock is held, so that concurrent changes publish in order.
        let lowest = pending.files.keys().next().copied().unwrap_or(u64::MAX);
        self.progress.send_modify(|p| p.lowest_pending = lowest);
    }

    /// Appends the row in `lanes.line` to the lane's open file, opening, uploading a part of and
    /// freezing the file as needed.
    async fn append(self: &Arc<Self>, lanes: &mut Lanes, lane: usize) -> Result<()> {
        if lanes.files[lane].is_none() {
            let previous = lanes.turn[lane].take();
            let (file, turn) = self.open_file(lane, previous).await?;
            lanes.files[lane] = Some(file);
            lanes.turn[lane] = Some(turn);
        }
        let Some(file) = lanes.files[lane].as_mut() else {
            return Ok(());
        };
        let line = lanes.line.as_bytes();
        file.enc.push_encoded(line, 1);
        let len = line.len();
        self.row_added(lanes, lane, len).await
    }

    /// Accounts for a row of `len` bytes just written into the lane's open file, and sends a
    /// part or freezes the file when it is due.
    async fn row_added(&self, lanes: &mut Lanes, lane: usize, len: usize) -> Result<()> {
        let Some(file) = lanes.files[lane].as_mut() else {
            return Ok(());
        };
        file.rows += 1;
        file.bytes += len as u64;
        if file.enc.len() >= self.settings.part_size {
            let part = file.enc.take();
            file.enc.reserve(self.settings.part_size + 64 * 1024);
            if file.parts.send(FileMsg::Part(part)).await.is_err() {
                return Err(self.upload_gone());
            }
        }
        if file.rows >= self.settings.batch_size || file.bytes >= self.settings.max_file_bytes {
            self.freeze(lanes, lane).await?;
        }
        Ok(())
    }

    /// The error for a file task that stopped taking parts.
    fn upload_gone(&self) -> Error {
        match self.failure() {
            Some(e) => Error::Failed(e),
            None => Error::Closed,
        }
    }

    /// Opens a file in `lane`: waits for a file permit (backpressure), registers it and starts
    /// its upload task and its age timer.
    async fn open_file(
        self: &Arc<Self>,
        lane: usize,
        previous: Option<oneshot::Receiver<()>>,
    ) -> Result<(OpenFile, oneshot::Receiver<()>)> {
        let permit = tokio::select! {
            permit = self.file_permits.clone().acquire_owned() => permit.map_err(|_| Error::Closed)?,
            _ = self.cancel.cancelled() => return Err(Error::Closed),
        };
        let no = self.next_file.fetch_add(1, Ordering::Relaxed);
        let key = self.stager.object_key(self.process_id, no);
        self.register(no);
        self.counters.files_open.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(1);
        let (queued, turn) = oneshot::channel();
        let order = worker::QueueOrder { previous, queued };
        self.spawn_supervised(
            "a file upload task",
            worker::run_file(self.clone(), no, key, lane, rx, permit, order),
        );
        self.tracker
            .spawn(worker::age_timer(self.clone(), lane, no));
        let mut enc = CsvEncoder::with_capacity(self.settings.part_size + 64 * 1024);
        enc.clear();
        Ok((
            OpenFile {
                no,
                enc,
                rows: 0,
                bytes: 0,
                parts: tx,
            },
            turn,
        ))
    }

    /// Hands the lane's open file (if any) to its upload task to complete.
    async fn freeze(&self, lanes: &mut Lanes, lane: usize) -> Result<()> {
        let Some(mut file) = lanes.files[lane].take() else {
            return Ok(());
        };
        if !file.enc.is_empty() {
            let part = file.enc.take();
            if file.parts.send(FileMsg::Part(part)).await.is_err() {
                return Err(self.upload_gone());
            }
        }
        let finish = FileMsg::Finish {
            rows: file.rows,
            bytes: file.bytes,
        };
        if file.parts.send(finish).await.is_err() {
            return Err(self.upload_gone());
        }
        Ok(())
    }

    /// Freezes the open file of `lane` if it is still file `no` (called by its age timer).
    async fn freeze_if_open(self: &Arc<Self>, lane: usize, no: u64) {
        let mut lanes = self.lanes.lock().await;
        if lanes.files[lane].as_ref().map(|f| f.no) == Some(no) {
            tracing::debug!(process_id = %self.process_id, file_no = no, "file reached max_file_age");
            if let Err(e) = self.freeze(&mut lanes, lane).await {
                tracing::debug!(error = %e, "freezing an aged file");
            }
        }
    }

    /// Stores records that could not be encoded and enforces the budget.
    async fn reject_unencodable(&self, errors: Vec<EncodeError>) -> Result<()> {
        let rejects: Vec<Reject> = errors
            .iter()
            .map(|e| Reject {
                file_no: None,
                line_no: None,
                raw_record: None,
                sqlstate: None,
                message: format!("could not encode the record: {e}"),
            })
            .collect();
        tracing::warn!(
            process_id = %self.process_id,
            count = rejects.len(),
            first = %errors[0],
            "records rejected: they could not be encoded"
        );
        let stored = self
            .settings
            .retry
            .run("storing rejected records", |_| async {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| Error::database("storing rejected records", e))?;
                checkpoint::record_rejects(&mut conn, self.process_id, &rejects).await
            })
            .await;
        if let Err(e) = stored {
            // The rows were accepted and can be neither imported nor shown as rejected.
            let shown = e.to_string();
            self.fail(e);
            return Err(Error::Config(format!(
                "could not store {} rejected records: {shown}",
                rejects.len()
            )));
        }
        self.count_rejects(rejects.iter().map(|r| r.message.clone()))
    }

    /// Counts rejected records; past the budget the processor fails with an error naming them.
    fn count_rejects(&self, messages: impl ExactSizeIterator<Item = String>) -> Result<()> {
        let n = messages.len() as u64;
        let total = self.counters.rejected.fetch_add(n, Ordering::AcqRel) + n;
        {
            let mut pending = self.pending();
            for m in messages {
                if pending.first_rejects.len() < 5 {
                    pending.first_rejects.push(m);
                }
            }
        }
        if total > self.settings.max_error_records {
            let err = Error::TooManyRejects {
                table: self.target.table.to_string(),
                rejected: total,
                budget: self.settings.max_error_records,
                first: self.pending().first_rejects.clone(),
            };
            self.fail(err);
            return Err(Error::Failed(
                self.failure().unwrap_or_else(|| Arc::new(Error::Closed)),
            ));
        }
        Ok(())
    }

    /// Rejects this processor may still take before its budget runs out.
    fn reject_budget_left(&self) -> u64 {
        self.settings
            .max_error_records
            .saturating_sub(self.counters.rejected.load(Ordering::Acquire))
    }

    /// Takes `n` rejects from the budget before they are committed, or fails without taking any.
    fn reserve_rejects(&self, n: u64, first: &[String]) -> Result<()> {
        let budget = self.settings.max_error_records;
        let reserved =
            self.counters
                .rejected
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                    (r + n <= budget).then_some(r + n)
                });
        let mut pending = self.pending();
        for m in first {
            if pending.first_rejects.len() < 5 {
                pending.first_rejects.push(m.clone());
            }
        }
        match reserved {
            Ok(_) => Ok(()),
            Err(current) => Err(Error::TooManyRejects {
                table: self.target.table.to_string(),
                rejected: current + n,
                budget,
                first: pending.first_rejects.clone(),
            }),
        }
    }

    /// The error for a file whose `n` rejects would go over the budget (nothing is reserved).
    fn over_budget(&self, n: u64, first: &[String]) -> Error {
        let mut all = self.pending().first_rejects.clone();
        all.extend(first.iter().take(5usize.saturating_sub(all.len())).cloned());
        Error::TooManyRejects {
            table: self.target.table.to_string(),
            rejected: self.counters.rejected.load(Ordering::Acquire) + n,
            budget: self.settings.max_error_records,
            first: all,
        }
    }

    /// Returns rejects to the budget (their import did not commit).
    fn release_rejects(&self, n: u64) {
        self.counters.rejected.fetch_sub(n, Ordering::AcqRel);
    }

    async fn flush(&self) -> Result<Stats> {
        if let Some(e) = self.failure() {
            return Err(Error::Failed(e));
        }
        let upto = {
            let mut lanes = self.lanes.lock().await;
            for lane in 0..lanes.files.len() {
                self.freeze(&mut lanes, lane).await?;
            }
            self.next_file.load(Ordering::Relaxed) - 1
        };
        let mut rx = self.progress.subscribe();
        loop {
            let p = *rx.borrow_and_update();
            if p.failed {
                return Err(self.upload_gone());
            }
            if p.lowest_pending > upto {
                break;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Err(Error::Closed) },
                _ = self.cancel.cancelled() => return Err(self.upload_gone()),
            }
        }
        Ok(self.stats())
    }

    async fn shutdown(&self) -> Result<Stats> {
        let mut done = self.shutdown.lock().await;
        if let Some(result) = done.as_ref() {
            return result.clone().map_err(Error::Failed);
        }
        {
            let _lanes = self.lanes.lock().await;
            self.closed.store(true, Ordering::Release);
        }
        let result = self.flush().await;
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let message = result
            .as_ref()
            .err()
            .map(|e| crate::staging::redact_urls(&e.to_string()));
        if let Err(e) =
            checkpoint::finish_job(&self.pool, self.process_id, message.as_deref()).await
        {
            tracing::warn!(error = %e, "could not record the job's end in the checkpoint");
        }
        tracing::info!(process_id = %self.process_id, ok = result.is_ok(), "bulk processor shut down");
        let stored = match result {
            Ok(stats) => Ok(stats),
            Err(Error::Failed(e)) => Err(e),
            Err(e) => Err(Arc::new(e)),
        };
        *done = Some(stored.clone());
        stored.map_err(Error::Failed)
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        // Settled counts first: a row is counted accepted before it can be imported or
        // rejected, so reading `accepted` last keeps imported + rejected <= accepted.
        let imported = c.imported.load(Ordering::Acquire);
        let rejected = c.rejected.load(Ordering::Acquire);
        let accepted = c.accepted.load(Ordering::Acquire);
        let oldest = self.pending().files.values().next().map(|t| t.elapsed());
        Stats {
            process_id: self.process_id,
            rows_accepted: accepted,
            rows_imported: imported,
            rows_rejected: rejected,
            rows_pending: accepted.saturating_sub(imported + rejected),
            files_open: c.files_open.load(Ordering::Relaxed),
            files_waiting: c.files_waiting.load(Ordering::Relaxed),
            files_imported: c.files_imported.load(Ordering::Relaxed),
            files_failed: c.files_failed.load(Ordering::Relaxed),
            bytes_staged: c.bytes_staged.load(Ordering::Relaxed),
            oldest_pending_age: oldest,
        }
    }
}
