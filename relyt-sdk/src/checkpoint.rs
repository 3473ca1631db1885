//! The checkpoint: the SDK's own tables in schema `relyt_sys` (see `migrations/`), one row per
//! job (process id) and per staged file, and the rejected records.
//!
//! Every counter changes with atomic SQL (`SET n = n + $1`), never read-modify-write. A file's
//! IMPORTED state commits in the same transaction as its rows (see `lock_file` and
//! `mark_imported`, both called inside the import's transaction).

use sqlx::{Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The migration that creates `relyt_sys`, applied by [`migrate`].
pub const MIGRATION: &str = include_str!("../../migrations/0001_relyt_sys.sql");

/// The states of a staged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileState {
    /// Being written and uploaded.
    Created,
    /// Complete on S3, waiting for an importer.
    Frozen,
    /// An importer has taken it.
    Importing,
    /// Its rows are in the table (committed with this state).
    Imported,
    /// Its import failed; it is kept on S3.
    Error,
}

impl FileState {
    /// The state as stored in `relyt_sys.relyt_loader_file.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Frozen => "FROZEN",
            Self::Importing => "IMPORTING",
            Self::Imported => "IMPORTED",
            Self::Error => "ERROR",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "CREATED" => Self::Created,
            "FROZEN" => Self::Frozen,
            "IMPORTING" => Self::Importing,
            "IMPORTED" => Self::Imported,
            "ERROR" => Self::Error,
            _ => return None,
        })
    }
}

fn db(context: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| Error::database(context, e)
}

/// Creates or updates the `relyt_sys` tables (idempotent; serialized by an advisory lock so that
/// processors starting together do not race on the catalog).
pub async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool
        .begin()
        .await
        .map_err(db("applying the relyt_sys migration"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('relyt_sys migration'))")
        .execute(&mut *tx)
        .await
        .map_err(db("applying the relyt_sys migration"))?;
    tx.execute(sqlx::raw_sql(MIGRATION)).await.map_err(db(
        "applying the relyt_sys migration (migrations/0001_relyt_sys.sql)",
    ))?;
    tx.commit()
        .await
        .map_err(db("applying the relyt_sys migration"))
}

/// Registers a job as RUNNING.
pub(crate) async fn create_job(pool: &PgPool, process_id: Uuid, table: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO relyt_sys.relyt_loader_job (process_id, pg_table, status) \
         VALUES ($1, $2, 'RUNNING')",
    )
    .bind(process_id.to_string())
    .bind(table)
    .execute(pool)
    .await
    .map_err(db("registering the job in relyt_sys.relyt_loader_job"))?;
    Ok(())
}

/// Ends a job: COMPLETED, or FAILED with a message.
pub(crate) async fn finish_job(pool: &PgPool, process_id: Uuid, error: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE relyt_sys.relyt_loader_job SET status = $2, error_message = $3, end_time = now() \
         WHERE process_id = $1",
    )
    .bind(process_id.to_string())
    .bind(if error.is_some() {
        "FAILED"
    } else {
        "COMPLETED"
    })
    .bind(error)
    .execute(pool)
    .await
    .map_err(db("updating the job's status"))?;
    Ok(())
}

/// Records a new file (CREATED).
pub(crate) async fn file_created(
    pool: &PgPool,
    process_id: Uuid,
    file_no: u64,
    key: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO relyt_sys.relyt_loader_file (process_id, file_no, s3_key, status) \
         VALUES ($1, $2, $3, 'CREATED') ON CONFLICT (process_id, file_no) DO NOTHING",
    )
    .bind(process_id.to_string())
    .bind(file_no as i64)
    .bind(key)
    .execute(pool)
    .await
    .map_err(db("recording a new file in relyt_sys.relyt_loader_file"))?;
    Ok(())
}

/// Records that a file is complete on S3 (FROZEN), and counts its rows as accepted.
pub(crate) async fn file_frozen(
    pool: &PgPool,
    process_id: Uuid,
    file_no: u64,
    rows: u64,
    bytes: u64,
) -> Result<()> {
    sqlx::query(
        "WITH f AS (UPDATE relyt_sys.relyt_loader_file \
                    SET status = 'FROZEN', num_records = $3, num_bytes = $4, frozen_at = now() \
                    WHERE process_id = $1 AND file_no = $2 AND status = 'CREATED' \
                    RETURNING 1) \
         UPDATE relyt_sys.relyt_loader_job \
         SET rows_accepted = rows_accepted + $3, last_insert_time = now() \
         WHERE process_id = $1 AND EXISTS (SELECT FROM f)",
    )
    .bind(process_id.to_string())
    .bind(file_no as i64)
    .bind(rows as i64)
    .bind(bytes as i64)
    .execute(pool)
    .await
    .map_err(db("marking a file FROZEN"))?;
    Ok(())
}

/// Marks a FROZEN file as IMPORTING (visible to monitoring while the import runs).
pub(crate) async fn file_importing(pool: &PgPool, process_id: Uuid, file_no: u64) -> Result<()> {
    sqlx::query(
        "UPDATE relyt_sys.relyt_loader_file SET status = 'IMPORTING' \
         WHERE process_id = $1 AND file_no = $2 AND status IN ('FROZEN', 'ERROR')",
    )
    .bind(process_id.to_string())
    .bind(file_no as i64)
    .execute(pool)
    .await
    .map_err(db("marking a file IMPORTING"))?;
    Ok(())
}

/// Marks a file as failed, with the (redacted) error.
pub(crate) async fn file_failed(
    pool: &PgPool,
    process_id: Uuid,
    file_no: u64,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE relyt_sys.relyt_loader_file SET status = 'ERROR', error_message = $3 \
         WHERE process_id = $1 AND file_no = $2 AND status <> 'IMPORTED'",
    )
    .bind(process_id.to_string())
    .bind(file_no as i64)
    .bind(error)
    .execute(pool)
    .await
    .map_err(db("marking a file ERROR"))?;
    Ok(())
}

/// Inside the import's transaction: locks the file's row and returns its state, so that of two
/// importers racing for one file the second waits and then sees IMPORTED. With IMPORTED come the
/// rows imported and rejected, when processor `instance` committed that import (else zeros).
pub(crate) async fn lock_file(
    conn: &mut PgConnection,
    process_id: Uuid,
    file_no: u64,
    instance: Uuid,
) -> Result<(FileState, u64, u64)> {
    let (status, imported, rejected): (String, i64, i64) = sqlx::query_as(
        "SELECT status, \
                CASE WHEN imported_by = $3 THEN rows_imported ELSE 0 END, \
                CASE WHEN imported_by = $3 THEN rows_rejected ELSE 0 END \
         FROM relyt_sys.relyt_loader_file \
         WHERE process_id = $1 AND file_no = $2 FOR UPDATE",
    )
    .bind(process_id.to_string())
    .bind(file_no as i64)
    .bind(instance.to_string())
    .fetch_one(&mut *conn)
    .await
    .map_err(db("locking the file's checkpoint row"))?;
    FileState::parse(&status)
        .map(|state| (state, imported as u64, rejected as u64))
        .ok_or_else(|| Error::Database {
            context: "reading the file's checkpoint row".into(),
            message: format!("unknown status {status:?}"),
            code: None,
            transient: false,
        })
}

/// Inside the import's transaction: marks the file IMPORTED and adds its rows to the job.
pub(crate) async fn mark_imported(
    conn: &mut PgConnection,
    process_id: Uuid,
    file_no: u64,
    rows: u64,
    rejected: u64,
    instance: Uuid,
) -> Result<()> {
    sqlx::query(
        "WITH f AS (UPDATE relyt_sys.relyt_loader_file \
                    SET status = 'IMPORTED', rows_imported = $3, rows_rejected = $4, \
                        imported_by = $5, imported_at = now(), error_message = NULL \
                    WHERE process_id = $1 AND file_no = $2) \
         UPDATE relyt_sys.relyt_loader_job SET rows_imported = rows_imported + $3 \
         WHERE process_id = $1",
    )
    .bind(process_id.to_string())
    .bind(file_no as i64)
    .bind(rows as i64)
    .bind(rejected as i64)
    .bind(instance.to_string())
    .execute(&mut *conn)
    .await
    .map_err(db("marking a file IMPORTED"))?;
    Ok(())
}

/// One rejected record.
#[derive(Debug, Clone)]
pub(crate) struct Reject {
    pub(crate) file_no: Option<u64>,
    pub(crate) line_no: Option<u64>,
    pub(crate) raw_record: Option<String>,
    pub(crate) sqlstate: Option<String>,
    pub(crate) message: String,
}

/// Stores rejected records and counts them on the job, in one statement.
pub(crate) async fn record_rejects(
    conn: &mut PgConnection,
    process_id: Uuid,
    rejects: &[Reject],
) -> Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    let files: Vec<Option<i64>> = rejects
        .iter()
        .map(|r| r.file_no.map(|n| n as i64))
        .collect();
    let lines: Vec<Option<i64>> = rejects
        .iter()
        .map(|r| r.line_no.map(|n| n as i64))
        .collect();
    let raws: Vec<Option<String>> = rejects.iter().map(|r| r.raw_record.clone()).collect();
    let states: Vec<Option<String>> = rejects.iter().map(|r| r.sqlstate.clone()).collect();
    let messages: Vec<String> = rejects.iter().map(|r| r.message.clone()).collect();
    sqlx::query(
        "WITH r AS (INSERT INTO relyt_sys.relyt_loader_reject \
                        (process_id, file_no, line_no, raw_record, sqlstate, message) \
                    SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], \
                                             $6::text[])) \
         UPDATE relyt_sys.relyt_loader_job SET rows_rejected = rows_rejected + $7 \
         WHERE process_id = $1",
    )
    .bind(process_id.to_string())
    .bind(files)
    .bind(lines)
    .bind(raws)
    .bind(states)
    .bind(messages)
    .bind(rejects.len() as i64)
    .execute(&mut *conn)
    .await
    .map_err(db(
        "storing rejected records in relyt_sys.relyt_loader_reject",
    ))?;
    Ok(())
}

/// A file left by an earlier run of a job.
#[derive(Debug, Clone)]
pub(crate) struct LeftFile {
    pub(crate) file_no: u64,
    pub(crate) key: String,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) state: FileState,
}

/// Takes over a job for a resume: checks it loads `table`, sets it RUNNING again, and returns
/// its files that are not IMPORTED, in file order.
pub(crate) async fn take_over_job(
    pool: &PgPool,
    process_id: Uuid,
    table: &str,
) -> Result<(Vec<LeftFile>, u64)> {
    let job: Option<(String, i64)> = sqlx::query_as(
        "UPDATE relyt_sys.relyt_loader_job \
         SET status = 'RUNNING', error_message = NULL, end_time = NULL \
         WHERE process_id = $1 RETURNING pg_table, rows_rejected",
    )
    .bind(process_id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db("taking over the job to resume"))?;
    match &job {
        None => {
            return Err(Error::Config(format!(
                "no job {process_id} in relyt_sys.relyt_loader_job to resume; check the process id"
            )));
        }
        Some((loaded, _)) if loaded.as_str() != table => {
            return Err(Error::Config(format!(
                "job {process_id} loaded {loaded}, not {table}; resume it with .table({loaded:?})"
            )));
        }
        Some(_) => {}
    }
    let rejected = job.map_or(0, |(_, r)| r.max(0) as u64);
    // A file that failed before it was complete on S3 (ERROR, never FROZEN) has no object: it
    // is lost like a CREATED one.
    let rows: Vec<(i64, String, i64, i64, String)> = sqlx::query_as(
        "SELECT file_no, s3_key, num_records, num_bytes, \
                CASE WHEN status = 'ERROR' AND frozen_at IS NULL THEN 'CREATED' ELSE status END \
         FROM relyt_sys.relyt_loader_file \
         WHERE process_id = $1 AND status <> 'IMPORTED' ORDER BY file_no",
    )
    .bind(process_id.to_string())
    .fetch_all(pool)
    .await
    .map_err(db("reading the job's files to resume"))?;
    let files = rows
        .into_iter()
        .filter_map(|(no, key, rows, bytes, status)| {
            Some(LeftFile {
                file_no: no as u64,
                key,
                rows: rows as u64,
                bytes: bytes as u64,
                state: FileState::parse(&status)?,
            })
        })
        .collect();
    Ok((files, rejected))
}

/// The highest file number a job has used.
pub(crate) async fn last_file_no(pool: &PgPool, process_id: Uuid) -> Result<u64> {
    let (last,): (Option<i64>,) = sqlx::query_as(
        "SELECT max(file_no) FROM relyt_sys.relyt_loader_file WHERE process_id = $1",
    )
    .bind(process_id.to_string())
    .fetch_one(pool)
    .await
    .map_err(db("reading the job's last file number"))?;
    Ok(last.unwrap_or(0) as u64)
}
