//! The PostgreSQL import methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Executor, PgConnection};

use super::ImportMethod;
use crate::config::ConflictMode;
use crate::error::{Error, Result};
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
        ImportMethod::ClientCopy => client_copy(conn, stager, object, table, &target.columns).await,
    }
}

async fn run(conn: &mut PgConnection, sql: String, context: &str) -> Result<u64> {
    conn.execute(statement(sql))
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| Error::database(context, e))
}

/// The ordinal column of the staging table: rows get increasing values in file order.
const ORD_COLUMN: &str = "__relyt_ord";

/// The merge that applies a staged batch to the target: one row per key (the last in file order
/// for updates, the first for do-nothing), then `ON CONFLICT`.
pub(crate) fn merge_sql(target: &Target, stage: &TableName) -> String {
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
    format!(
        "INSERT INTO {} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {stage} \
         ORDER BY {keys}, {} {order} ON CONFLICT ({keys}) {action}",
        target.table,
        quote_ident(ORD_COLUMN)
    )
}

/// Loads one staged file into the target, inside the caller's transaction. Returns the number of
/// rows in the file.
///
/// Plain inserts COPY straight into the table. Upserts first try the same (`direct`, shared by
/// the processor's importers): when no key conflicts, that is the cheapest correct load. On a
/// unique violation the attempt is rolled back to a savepoint and the file goes through a
/// temporary table and a merge; once a conflict has been seen, later files go there at once.
pub(crate) async fn import_rows(
    conn: &mut PgConnection,
    stager: &Stager,
    object: &StagedObject,
    target: &Target,
    file_no: u64,
    direct: &AtomicBool,
) -> Result<u64> {
    if !target.upserts() {
        return copy_into(conn, stager, object, target, &target.table).await;
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
                return Ok(rows);
            }
            Err(e) if e.sqlstate() == Some(UNIQUE_VIOLATION) => {
                tracing::debug!(file_no, "keys conflict: switching to merge imports");
                direct.store(false, Ordering::Relaxed);
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
    let rows = copy_into(conn, stager, object, target, &stage).await?;
    let context = format!("merging {} into {}", object.key, target.table);
    run(conn, merge_sql(target, &stage), &context).await?;
    Ok(rows)
}

/// The statement that makes the server pull `url` with curl into `table (columns)`.
///
/// curl runs with `-f` (an HTTP error is a failure, not CSV), `-sS` (quiet, but errors shown) and a
/// bounded connect time; the URL is shell-quoted inside the program and the program is
/// SQL-quoted, since `COPY` takes no bind parameters.
pub(crate) fn copy_from_program_sql(table: &TableName, columns: &[&str], url: &str) -> String {
    let program = format!("curl -sfS --connect-timeout 30 {}", quote_shell(url));
    format!(
        "COPY {table} ({}) FROM PROGRAM {} (FORMAT csv)",
        column_list(columns.iter().copied()),
        quote_literal(&program)
    )
}

/// Imports a staged object by letting the server fetch it ([`super::ImportMethod::ServerPull`]).
/// Returns the number of rows loaded.
pub async fn server_pull(
    conn: &mut PgConnection,
    stager: &Stager,
    object: &StagedObject,
    table: &TableName,
    columns: &[&str],
    url_lifetime: Duration,
) -> Result<u64> {
    let url = stager.presign_get(&object.key, url_lifetime).await?;
    let sql = copy_from_program_sql(table, columns, url.expose());
    tracing::debug!(table = %table, key = %object.key, "COPY FROM PROGRAM (server pull)");
    let done = conn
        .execute(statement(sql))
        .await
        .map_err(|e| Error::database(format!("importing {} into {table}", object.key), e))?;
    Ok(done.rows_affected())
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
    fn server_pull_statement_quotes_everything() {
        let table: TableName = "\"My\"\"Schema\".events".parse().expect("valid");
        let sql = copy_from_program_sql(&table, &["id", "na\"me"], "http://h/b/k?a=1&b='x'");
        assert_eq!(
            sql,
            "COPY \"My\"\"Schema\".\"events\" (\"id\", \"na\"\"me\") FROM PROGRAM \
             'curl -sfS --connect-timeout 30 ''http://h/b/k?a=1&b=''\\''''x''\\''''''' (FORMAT csv)"
        );
    }
}
