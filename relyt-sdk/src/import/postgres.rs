//! The PostgreSQL import methods.

use std::time::Duration;

use sqlx::{Executor, PgConnection};

use crate::error::{Error, Result};
use crate::sql::{TableName, column_list, quote_literal, quote_shell, statement};
use crate::staging::{StagedObject, Stager};

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
