//! Narrowing a data error (SQLSTATE class 22 or 23) down to the offending records, so that the rest
//! of the file is imported and each bad record is rejected with its line, raw text and message.
//!
//! Two tools, used inside the import's transaction with savepoints:
//!
//! - [`copy_isolating`]: `COPY` from a position; when PostgreSQL names the failing line (its
//!   CONTEXT says `COPY t, line N`, for type errors and for constraints checked while copying),
//!   the records before it are copied again (they passed), the record is rejected, and copying
//!   resumes after it; errors without a line are bisected. Copies go in windows, so a bad record
//!   costs at most two copies of a window.
//! - [`merge_isolating`]: for errors without a line (constraints checked by the merge
//!   `INSERT ... SELECT` of an upsert), bisection over ordinal ranges of the staging table.

use bytes::Bytes;
use sqlx::PgConnection;

use crate::checkpoint::Reject;
use crate::error::{Error, Result};
use crate::retry::FaultKind;
use crate::sql::{TableName, column_list};

/// The records of a staged CSV file: where each ends, in bytes and in physical lines.
pub(crate) struct Records {
    data: Bytes,
    /// Byte offset just past each record's newline.
    ends: Vec<usize>,
    /// The physical line (1-based) each record ends on.
    end_lines: Vec<u64>,
}

impl Records {
    /// Splits CSV text into records: a newline ends a record unless it is inside quotes.
    pub(crate) fn split(data: Bytes) -> Self {
        let mut ends = Vec::new();
        let mut end_lines = Vec::new();
        let mut quoted = false;
        let mut line = 0u64;
        for (i, &b) in data.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b'\n' => {
                    line += 1;
                    if !quoted {
                        ends.push(i + 1);
                        end_lines.push(line);
                    }
                }
                _ => {}
            }
        }
        if ends.last().copied().unwrap_or(0) < data.len() {
            // A last record without a newline.
            ends.push(data.len());
            end_lines.push(line + 1);
        }
        Self {
            data,
            ends,
            end_lines,
        }
    }

    /// The number of records.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, record: usize) -> usize {
        if record == 0 {
            0
        } else {
            self.ends[record - 1]
        }
    }

    /// The bytes of records `from..to`.
    fn slice(&self, from: usize, to: usize) -> Bytes {
        if from >= to {
            return Bytes::new();
        }
        self.data.slice(self.start(from)..self.ends[to - 1])
    }

    /// The physical line (1-based, in the file) a record ends on.
    pub(crate) fn line(&self, record: usize) -> u64 {
        self.end_lines[record]
    }

    /// A record's text without its newline.
    pub(crate) fn raw(&self, record: usize) -> String {
        let bytes = &self.data[self.start(record)..self.ends[record]];
        String::from_utf8_lossy(bytes.strip_suffix(b"\n").unwrap_or(bytes)).into_owned()
    }

    /// The record that a `COPY` starting at record `from` reported as its line `line`.
    fn record_at_line(&self, from: usize, line: u64) -> Option<usize> {
        let base = if from == 0 {
            0
        } else {
            self.end_lines[from - 1]
        };
        let target = base + line;
        let idx = self.end_lines[from..].partition_point(|&l| l < target);
        (from + idx < self.len()).then_some(from + idx)
    }
}

/// Sends records `from..to` with `COPY table (columns) FROM STDIN`.
async fn copy_range(
    conn: &mut PgConnection,
    table: &TableName,
    columns: &[&str],
    records: &Records,
    from: usize,
    to: usize,
) -> Result<u64> {
    let sql = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT csv)",
        column_list(columns.iter().copied())
    );
    let context = || format!("loading records {}..{} into {table}", from + 1, to);
    let mut copy = conn
        .copy_in_raw(&sql)
        .await
        .map_err(|e| Error::database(context(), e))?;
    let data = records.slice(from, to);
    for chunk in data.chunks(1 << 20) {
        if let Err(e) = copy.send(chunk).await {
            return Err(Error::database(context(), e));
        }
    }
    copy.finish()
        .await
        .map_err(|e| Error::database(context(), e))
}

async fn exec(conn: &mut PgConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| Error::database(sql, e))
}

/// A rejected record.
fn reject(records: &Records, file_no: u64, record: usize, err: &Error) -> Reject {
    Reject {
        file_no: Some(file_no),
        line_no: Some(records.line(record)),
        raw_record: Some(records.raw(record)),
        sqlstate: err.sqlstate().map(str::to_owned),
        message: err.to_string(),
    }
}

/// What an isolating load did.
#[derive(Default)]
pub(crate) struct Isolated {
    /// The records loaded, in order (the staging table's ordinals follow this order).
    pub(crate) loaded: Vec<usize>,
    pub(crate) rejects: Vec<Reject>,
}

/// Records copied per attempt while narrowing: a bad record costs at most two copies of this
/// many records, not of the whole file.
const WINDOW: usize = 10_000;

/// Where an isolating load puts its records, and how it undoes a failed attempt.
struct Sink<'a> {
    table: &'a TableName,
    columns: &'a [&'a str],
    records: &'a Records,
    /// `setval` of the staging table's ordinal sequence, run after each rolled-back attempt so
    /// that ordinals stay dense (the next row gets `loaded + 1`).
    after_rollback: Option<&'a str>,
}

impl Sink<'_> {
    /// Copies records `from..to` under a savepoint; on failure rolls back (and resets the
    /// ordinal) and returns the error.
    async fn attempt(
        &self,
        conn: &mut PgConnection,
        from: usize,
        to: usize,
        out: &mut Isolated,
    ) -> Result<()> {
        exec(conn, "SAVEPOINT relyt_narrow").await?;
        match copy_range(conn, self.table, self.columns, self.records, from, to).await {
            Ok(_) => {
                exec(conn, "RELEASE SAVEPOINT relyt_narrow").await?;
                out.loaded.extend(from..to);
                Ok(())
            }
            Err(e) => {
                exec(conn, "ROLLBACK TO SAVEPOINT relyt_narrow").await?;
                if let Some(sql) = self.after_rollback {
                    reset(conn, sql, out.loaded.len()).await?;
                }
                Err(e)
            }
        }
    }
}

/// Copies every record into `table`, rejecting the ones that fail with a data error. Works in
/// windows of [`WINDOW`] records: when PostgreSQL names the failing line, the records before it
/// are copied again and loading resumes after it; when it names none (a foreign key or another
/// check at the end of a `COPY`), the window is bisected. Stops with [`Error::TooManyRejects`]
/// once more than `max_rejects` were found. `after_rollback` resets the staging table's ordinal
/// sequence (see [`Sink`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy_isolating(
    conn: &mut PgConnection,
    table: &TableName,
    columns: &[&str],
    records: &Records,
    file_no: u64,
    max_rejects: u64,
    after_rollback: Option<&str>,
) -> Result<Isolated> {
    let sink = Sink {
        table,
        columns,
        records,
        after_rollback,
    };
    let mut out = Isolated::default();
    let mut pos = 0;
    while pos < records.len() {
        let end = (pos + WINDOW).min(records.len());
        let err = match sink.attempt(conn, pos, end, &mut out).await {
            Ok(()) => {
                pos = end;
                continue;
            }
            Err(e) if e.fault_kind() == FaultKind::Data => e,
            Err(e) => return Err(e),
        };
        let named = err
            .copy_line()
            .and_then(|line| records.record_at_line(pos, line))
            .filter(|&bad| bad < end);
        match named {
            Some(bad) => {
                if bad > pos {
                    // The records before the failing one passed this attempt; load them (by
                    // bisection, should one of them fail after all).
                    bisect(conn, &sink, pos, bad, file_no, max_rejects, &mut out).await?;
                }
                tracing::debug!(file_no, line = records.line(bad), "record rejected");
                out.rejects.push(reject(records, file_no, bad, &err));
                if out.rejects.len() as u64 > max_rejects {
                    return Err(too_many(table, &out.rejects, max_rejects));
                }
                pos = bad + 1;
            }
            None => {
                bisect(conn, &sink, pos, end, file_no, max_rejects, &mut out).await?;
                pos = end;
            }
        }
    }
    Ok(out)
}

/// Loads records `from..to` by bisection: a range that fails with a data error is split until
/// the failing records stand alone and are rejected. Ranges are loaded in ascending order.
async fn bisect(
    conn: &mut PgConnection,
    sink: &Sink<'_>,
    from: usize,
    to: usize,
    file_no: u64,
    max_rejects: u64,
    out: &mut Isolated,
) -> Result<()> {
    let mut stack = vec![(from, to)];
    while let Some((lo, hi)) = stack.pop() {
        if lo >= hi {
            continue;
        }
        match sink.attempt(conn, lo, hi, out).await {
            Ok(()) => {}
            Err(e) if e.fault_kind() == FaultKind::Data => {
                if hi - lo == 1 {
                    out.rejects.push(reject(sink.records, file_no, lo, &e));
                    if out.rejects.len() as u64 > max_rejects {
                        return Err(too_many(sink.table, &out.rejects, max_rejects));
                    }
                } else {
                    let mid = lo + (hi - lo) / 2;
                    stack.push((mid, hi));
                    stack.push((lo, mid));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Resets the staging table's ordinal sequence so that the next row gets `loaded + 1`.
pub(crate) async fn reset(conn: &mut PgConnection, setval_sql: &str, loaded: usize) -> Result<()> {
    sqlx::query(crate::sql::statement(setval_sql.to_owned()))
        .bind(loaded as i64 + 1)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| Error::database("resetting the staging ordinal", e))
}

pub(crate) fn too_many(table: &TableName, rejects: &[Reject], budget: u64) -> Error {
    Error::TooManyRejects {
        table: table.to_string(),
        rejected: rejects.len() as u64,
        budget,
        first: rejects
            .iter()
            .take(5)
            .map(|r| {
                format!(
                    "file {} line {}: {}",
                    r.file_no.unwrap_or_default(),
                    r.line_no.unwrap_or_default(),
                    r.message
                )
            })
            .collect(),
    }
}

/// Runs the merge over ordinals `lo..=hi`, bisecting on data errors; returns the ordinals of the
/// rows that fail on their own.
pub(crate) async fn merge_isolating(
    conn: &mut PgConnection,
    merge_range_sql: &str,
    lo: i64,
    hi: i64,
    max_rejects: u64,
    bad: &mut Vec<(i64, Error)>,
) -> Result<()> {
    let mut stack = vec![(lo, hi)];
    while let Some((lo, hi)) = stack.pop() {
        if lo > hi {
            continue;
        }
        exec(conn, "SAVEPOINT relyt_merge").await?;
        let res = sqlx::query(crate::sql::statement(merge_range_sql.to_owned()))
            .bind(lo)
            .bind(hi)
            .execute(&mut *conn)
            .await
            .map_err(|e| Error::database("merging a staged batch", e));
        match res {
            Ok(_) => exec(conn, "RELEASE SAVEPOINT relyt_merge").await?,
            Err(e) if e.fault_kind() == FaultKind::Data => {
                exec(conn, "ROLLBACK TO SAVEPOINT relyt_merge").await?;
                if lo == hi {
                    bad.push((lo, e));
                    if bad.len() as u64 > max_rejects {
                        return Ok(());
                    }
                } else {
                    let mid = lo + (hi - lo) / 2;
                    // The upper half is merged after the lower one (pushed first, popped last),
                    // so that for a key in both halves the later row still wins.
                    stack.push((mid + 1, hi));
                    stack.push((lo, mid));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_records_with_quoted_newlines() {
        let data = Bytes::from_static(b"1,a\n2,\"x\ny\"\n3,\"\"\"\"\n4,z");
        let r = Records::split(data);
        assert_eq!(r.len(), 4);
        assert_eq!((r.line(0), r.line(1), r.line(2), r.line(3)), (1, 3, 4, 5));
        assert_eq!(r.raw(1), "2,\"x\ny\"");
        assert_eq!(&r.slice(1, 3)[..], b"2,\"x\ny\"\n3,\"\"\"\"\n");
        // A COPY from record 1: its line 2 is record 1's last line, line 3 is record 2.
        assert_eq!(r.record_at_line(1, 2), Some(1));
        assert_eq!(r.record_at_line(1, 1), Some(1));
        assert_eq!(r.record_at_line(1, 3), Some(2));
        assert_eq!(r.record_at_line(0, 1), Some(0));
        assert_eq!(r.record_at_line(0, 9), None);
    }
}
