//! The PostgreSQL import methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Executor, PgConnection};

use super::ImportMethod;
use super::narrow::{Records, copy_isolating, merge_isolating, too_many};
use crate::checkpoint::Reject;
use crate::config::ConflictMode;
use crate::error::{Error, Result};
use crate::retry::FaultKind;
use crate::sql::{TableName, column_list, quote_ident, quote_literal, quote_shell, statement};
use crate::staging::{StagedObject, Stager};

/// SQLSTATE `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";

/// Where and how a processor's files go.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) table: TableName,
    pub(crate) columns: Vec<&'static str>,
    /// The conflict key: empty for plain inserts.
    pub(crate) keys: Vec<String>,
    pub(crate) conflict: ConflictMode,
    pub(crate) method: ImportMethod,
    pub(crate) url_lifetime: Duration,
    /// Settings of the Relyt method, when it is the one chosen.
    pub(crate) relyt: Option<super::external::RelytTarget>,
}

impl Target {
    fn upserts(&self) -> bool {
        !self.keys.is_empty() && self.conflict != ConflictMode::Insert
    }
}

/// Copies the object's rows into `table` with the configured method.
async fn copy_into(
    conn: &mut PgConnection,
    stager: &Stager,
    object: &StagedObject,
    target: &Target,
    table: &TableName,
) -> Result<u64> {
    match target.method {
        ImportMethod::ServerPull => {
            server_pull(
                conn,
                stager,
                object,
                table,
                &target.columns,
                target.url_lifetime,
            )
            .await
        }
        ImportMethod::ClientCopy | ImportMethod::RelytExternalTable => {
            client_copy(conn, stager, object, table, &target.columns).await
        }
    }
}

async fn run(conn: &mut PgConnection, sql: String, context: &str) -> Result<u64> {
    conn.execute(statement(sql))
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| Error::database(context, e))
}

/// A staged file's records, downloaded once, when a data error needs them.
struct StagedRecords<'a> {
    stager: &'a Stager,
    object: &'a StagedObject,
    records: Option<Records>,
}

impl<'a> StagedRecords<'a> {
    fn new(stager: &'a Stager, object: &'a StagedObject) -> Self {
        Self {
            stager,
            object,
            records: None,
        }
    }

    async fn get(&mut self) -> Result<&Records> {
        if self.records.is_none() {
            let body = self.stager.get(&self.object.key).await?;
            let data = body.collect().await.map_err(|e| Error::S3 {
                operation: "GetObject",
                key: self.object.key.clone(),
                message: e.to_string(),
                transient: true,
            })?;
            self.records = Some(Records::split(data.into_bytes()));
        }
        match &self.records {
            Some(records) => Ok(records),
            None => Err(Error::Closed),
        }
    }
}

/// The ordinal column of the staging table: rows get increasing values in file order.
const ORD_COLUMN: &str = "__relyt_ord";

/// The merge that applies a staged batch to the target: one row per key (the last in file order
/// for updates, the first for do-nothing), then `ON CONFLICT`.
pub(crate) fn merge_sql(target: &Target, stage: &TableName, ranged: bool) -> String {
    let cols = column_list(target.columns.iter().copied());
    let keys = column_list(target.keys.iter().map(String::as_str));
    let order = if target.conflict == ConflictMode::DoNothing {
        "ASC"
    } else {
        "DESC"
    };
    let updates: Vec<String> = target
        .columns
        .iter()
        .filter(|c| !target.keys.iter().any(|k| k == *c))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
        .collect();
    let action = if target.conflict == ConflictMode::DoNothing || updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    let ord = quote_ident(ORD_COLUMN);
    let range = if ranged {
        format!(" WHERE {ord} BETWEEN $1 AND $2")
    } else {
        String::new()
    };
    format!(
        "INSERT INTO {} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {stage}{range} \
         ORDER BY {keys}, {ord} {order} ON CONFLICT ({keys}) {action}",
        target.table,
    )
}

/// What importing one file did.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Rows loaded (the file's rows less the rejected ones).
    pub(crate) rows: u64,
    /// Records rejected for data errors, with their lines and messages.
    pub(crate) rejects: Vec<Reject>,
}

/// Loads one staged file into the target, inside the caller's transaction.
///
/// Plain inserts COPY straight into the table. Upserts first try the same (`direct`, shared by
/// the processor's importers): when no key conflicts, that is the cheapest correct load. On a
/// unique violation the attempt is rolled back to a savepoint and the file goes through a
/// temporary table and a merge; once a conflict has been seen, later files go there at once.
///
/// A data error (SQLSTATE class 22 or 23) is narrowed down to the offending records (see
/// [`super::narrow`]): they are returned as rejects and the other rows load. More than
/// `max_rejects` of them ends the import with [`Error::TooManyRejects`].
pub(crate) async fn import_rows(
    conn: &mut PgConnection,
    stager: &Stager,
    object: &StagedObject,
    target: &Target,
    file_no: u64,
    direct: &AtomicBool,
    max_rejects: u64,
) -> Result<Outcome> {
    if let (ImportMethod::RelytExternalTable, Some(relyt)) = (target.method, &target.relyt) {
        return super::external::import(conn, target, relyt, object, file_no).await;
    }
    let mut file = StagedRecords::new(stager, object);
    if !target.upserts() {
        run(conn, "SAVEPOINT relyt_file".into(), "starting an import").await?;
        let err = match copy_into(conn, stager, object, target, &target.table).await {
            Ok(rows) => {
                run(
                    conn,
                    "RELEASE SAVEPOINT relyt_file".into(),
                    "finishing an import",
                )
                .await?;
                return Ok(Outcome {
                    rows,
                    rejects: Vec::new(),
                });
            }
            Err(e) if e.fault_kind() == FaultKind::Data => e,
            Err(e) => return Err(e),
        };
        run(
            conn,
            "ROLLBACK TO SAVEPOINT relyt_file".into(),
            "undoing an import",
        )
        .await?;
        tracing::info!(file_no, error = %err, "data error: narrowing it down to the bad records");
        let records = file.get().await?;
        let done = copy_isolating(
            conn,
            &target.table,
            &target.columns,
            records,
            file_no,
            max_rejects,
            None,
        )
        .await?;
        return Ok(Outcome {
            rows: done.loaded.len() as u64,
            rejects: done.rejects,
        });
    }
    if direct.load(Ordering::Relaxed) {
        run(
            conn,
            "SAVEPOINT relyt_direct".into(),
            "starting a direct load",
        )
        .await?;
        match copy_into(conn, stager, object, target, &target.table).await {
            Ok(rows) => {
                run(
                    conn,
                    "RELEASE SAVEPOINT relyt_direct".into(),
                    "finishing a direct load",
                )
                .await?;
                return Ok(Outcome {
                    rows,
                    rejects: Vec::new(),
                });
            }
            Err(e) if e.fault_kind() == FaultKind::Data => {
                if e.sqlstate() == Some(UNIQUE_VIOLATION) {
                    tracing::debug!(file_no, "keys conflict: switching to merge imports");
                    direct.store(false, Ordering::Relaxed);
                }
                // Any data error: the merge path below narrows it down.
                run(
                    conn,
                    "ROLLBACK TO SAVEPOINT relyt_direct".into(),
                    "undoing a direct load",
                )
                .await?;
            }
            Err(e) => return Err(e),
        }
    }
    let stage = TableName::new(None, &format!("relyt_stage_{file_no}"));
    let cols = column_list(target.columns.iter().copied());
    run(
        conn,
        format!(
            "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {} WITH NO DATA",
            target.table
        ),
        "creating the staging table",
    )
    .await?;
    run(
        conn,
        format!(
            "ALTER TABLE {stage} ADD COLUMN {} bigserial",
            quote_ident(ORD_COLUMN)
        ),
        "creating the staging table",
    )
    .await?;

    // Stage the rows; type errors (which name their line) are narrowed here.
    run(conn, "SAVEPOINT relyt_stage".into(), "staging a file").await?;
    let mut outcome = Outcome::default();
    let loaded: Option<Vec<usize>> = match copy_into(conn, stager, object, target, &stage).await {
        Ok(rows) => {
            run(
                conn,
                "RELEASE SAVEPOINT relyt_stage".into(),
                "staging a file",
            )
            .await?;
            outcome.rows = rows;
            None
        }
        Err(e) if e.fault_kind() == FaultKind::Data => {
            run(
                conn,
                "ROLLBACK TO SAVEPOINT relyt_stage".into(),
                "staging a file",
            )
            .await?;
            tracing::info!(file_no, error = %e, "data error: narrowing it down to the bad records");
            let setval = format!(
                "SELECT setval(pg_get_serial_sequence({}, {}), $1, false)",
                quote_literal(&format!("pg_temp.{stage}")),
                quote_literal(ORD_COLUMN)
            );
            // The failed COPY used up ordinals: start them at 1 again.
            super::narrow::reset(conn, &setval, 0).await?;
            let records = file.get().await?;
            let done = copy_isolating(
                conn,
                &stage,
                &target.columns,
                records,
                file_no,
                max_rejects,
                Some(&setval),
            )
            .await?;
            outcome.rows = done.loaded.len() as u64;
            outcome.rejects = done.rejects;
            Some(done.loaded)
        }
        Err(e) => return Err(e),
    };

    // Merge; constraint errors (which name no line) are found by bisection over ordinals.
    let context = format!("merging {} into {}", object.key, target.table);
    run(conn, "SAVEPOINT relyt_merge_all".into(), &context).await?;
    let err = match run(conn, merge_sql(target, &stage, false), &context).await {
        Ok(_) => {
            run(conn, "RELEASE SAVEPOINT relyt_merge_all".into(), &context).await?;
            return Ok(outcome);
        }
        Err(e) if e.fault_kind() == FaultKind::Data => e,
        Err(e) => return Err(e),
    };
    run(
        conn,
        "ROLLBACK TO SAVEPOINT relyt_merge_all".into(),
        &context,
    )
    .await?;
    tracing::info!(file_no, error = %err, "data error in the merge: bisecting");
    // Bisection filters by ordinal many times: give it an index and statistics.
    run(
        conn,
        format!("CREATE INDEX ON {stage} ({})", quote_ident(ORD_COLUMN)),
        &context,
    )
    .await?;
    run(conn, format!("ANALYZE {stage}"), &context).await?;
    let budget = max_rejects.saturating_sub(outcome.rejects.len() as u64);
    let mut bad = Vec::new();
    let staged_rows = i64::try_from(outcome.rows).unwrap_or(i64::MAX);
    merge_isolating(
        conn,
        &merge_sql(target, &stage, true),
        1,
        staged_rows,
        budget,
        &mut bad,
    )
    .await?;
    let records = file.get().await?;
    let merge_rejects = bad.len() as u64;
    for (ord, e) in bad {
        let index = (ord - 1) as usize;
        let record = match &loaded {
            Some(loaded) => loaded.get(index).copied(),
            None => Some(index),
        };
        let Some(record) = record.filter(|&r| r < records.len()) else {
            return Err(e);
        };
        outcome.rejects.push(Reject {
            file_no: Some(file_no),
            line_no: Some(records.line(record)),
            raw_record: Some(records.raw(record)),
            sqlstate: e.sqlstate().map(str::to_owned),
            message: e.to_string(),
        });
    }
    if outcome.rejects.len() as u64 > max_rejects {
        return Err(too_many(&target.table, &outcome.rejects, max_rejects));
    }
    outcome.rows -= merge_rejects;
    Ok(outcome)
}

/// Imports a staged object by letting the server fetch it ([`super::ImportMethod::ServerPull`]).
/// Returns the number of rows loaded.
///
/// The statement is `relyt_sys.copy_from_program(...)` with the program (curl and the presigned
/// URL) as a bound parameter, so the URL is not in any statement text a client logs (sqlx logs
/// statements); the function is created by `migrations/`.
pub async fn server_pull(
    conn: &mut PgConnection,
    stager: &Stager,
    object: &StagedObject,
    table: &TableName,
    columns: &[&str],
    url_lifetime: Duration,
) -> Result<u64> {
    let url = stager.presign_get(&object.key, url_lifetime).await?;
    tracing::debug!(table = %table, key = %object.key, url = %url, "COPY FROM PROGRAM (server pull)");
    let (rows,): (i64,) =
        sqlx::query_as("SELECT relyt_sys.copy_from_program($1::text::regclass, $2, $3)")
            .bind(table.to_string())
            .bind(columns)
            .bind(curl_program(url.expose()))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::database(format!("importing {} into {table}", object.key), e))?;
    Ok(rows as u64)
}

/// The shell command the server runs to fetch `url`: curl with `-f` (an HTTP error is a
/// failure, not CSV), `-sS` (quiet, but errors shown) and a bounded connect time; the URL is
/// shell-quoted.
pub(crate) fn curl_program(url: &str) -> String {
    format!("curl -sfS --connect-timeout 30 {}", quote_shell(url))
}

/// Imports a staged object by streaming it through `COPY FROM STDIN`
/// ([`super::ImportMethod::ClientCopy`]). Returns the number of rows loaded.
pub async fn client_copy(
    conn: &mut PgConnection,
    stager: &Stager,
    object: &StagedObject,
    table: &TableName,
    columns: &[&str],
) -> Result<u64> {
    let context = || format!("importing {} into {table}", object.key);
    let mut body = stager.get(&object.key).await?;
    let sql = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT csv)",
        column_list(columns.iter().copied())
    );
    tracing::debug!(table = %table, key = %object.key, "COPY FROM STDIN (client copy)");
    let mut copy = conn
        .copy_in_raw(&sql)
        .await
        .map_err(|e| Error::database(context(), e))?;
    loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                if let Err(e) = copy.send(chunk).await {
                    return Err(Error::database(context(), e));
                }
            }
            Some(Err(e)) => {
                let err = Error::S3 {
                    operation: "GetObject",
                    key: object.key.clone(),
                    message: e.to_string(),
                    transient: true,
                };
                // Abort leaves the connection usable; its own error adds nothing.
                let _ = copy.abort("staged object could not be read").await;
                return Err(err);
            }
            None => break,
        }
    }
    copy.finish()
        .await
        .map_err(|e| Error::database(context(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_program_quotes_the_url() {
        assert_eq!(
            curl_program("http://h/b/k?a=1&b='x'"),
            r"curl -sfS --connect-timeout 30 'http://h/b/k?a=1&b='\''x'\'''"
        );
    }
}
