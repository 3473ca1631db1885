//! Reading the database's catalog: the target table's columns and key, and `loader_config()`.

use sqlx::PgPool;

use crate::config::S3Config;
use crate::error::{Error, Result};
use crate::record::RelytRecord;
use crate::sql::TableName;

/// What the catalog says of the target table.
#[derive(Debug)]
pub(crate) struct TableInfo {
    pub(crate) primary_key: Vec<String>,
    /// `format_type` of each record column, in record order.
    pub(crate) column_types: Vec<String>,
}

/// Checks that every column of the record exists in `table` and that its type can load there.
pub(crate) async fn check_table<T: RelytRecord>(
    pool: &PgPool,
    table: &TableName,
) -> Result<TableInfo> {
    let qualified = table.to_string();
    let (oid,): (Option<i64>,) = sqlx::query_as("SELECT to_regclass($1)::oid::bigint")
        .bind(&qualified)
        .fetch_one(pool)
        .await
        .map_err(|e| Error::database(format!("looking up table {qualified}"), e))?;
    let Some(oid) = oid else {
        return Err(Error::Config(format!(
            "table {qualified} does not exist (or the role cannot see it); create it first, or \
             check the name: unquoted parts are folded to lower case"
        )));
    };
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod) \
         FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(|e| Error::database(format!("reading the columns of {qualified}"), e))?;
    let mut problems = Vec::new();
    for column in T::COLUMNS {
        match columns.iter().find(|(name, _, _)| name == column.name()) {
            None => problems.push(format!("column {:?} does not exist", column.name())),
            Some((_, typname, _)) if !column.sql_type().loads_into(typname) => {
                problems.push(format!(
                    "column {:?} is {typname}, but the field encodes as {}",
                    column.name(),
                    column.sql_type().display_name()
                ))
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(Error::Config(format!(
            "the record does not fit {qualified}: {}; rename the field \
             (#[relyt(rename = \"...\")]), skip it (#[relyt(skip)]) or change its type",
            problems.join("; ")
        )));
    }
    let primary_key: Vec<(String,)> = sqlx::query_as(
        "SELECT a.attname::text FROM pg_index i \
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indrelid = $1::bigint::oid AND i.indisprimary ORDER BY k.n",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(|e| Error::database(format!("reading the primary key of {qualified}"), e))?;
    let column_types = T::COLUMNS
        .iter()
        .map(|c| {
            columns
                .iter()
                .find(|(name, _, _)| name == c.name())
                .map(|(_, _, formatted)| formatted.clone())
                .unwrap_or_default()
        })
        .collect();
    Ok(TableInfo {
        primary_key: primary_key.into_iter().map(|(n,)| n).collect(),
        column_types,
    })
}

/// Reads the S3 settings from `relyt_sys.loader_config()`, relyt-loader-go's convention.
pub(crate) async fn loader_config(pool: &PgPool) -> Result<S3Config> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Row = sqlx::query_as(
        "SELECT endpoint::text, region::text, bucket_name::text, prefix::text, access_key::text, \
         secret_key::text FROM relyt_sys.loader_config()",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| {
        Error::database(
            "reading S3 settings from relyt_sys.loader_config() (create it as the README shows, \
             or pass .s3(S3Config))",
            e,
        )
    })?;
    let (endpoint, region, bucket, prefix, access_key, secret_key) = row;
    let bucket = bucket
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Config("relyt_sys.loader_config() returned no bucket_name".into()))?;
    let mut config = S3Config::new(bucket);
    if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
        let endpoint = if endpoint.contains("://") {
            endpoint
        } else {
            format!("https://{endpoint}")
        };
        config = config.with_endpoint(endpoint);
    }
    if let Some(region) = region.filter(|r| !r.is_empty()) {
        config = config.with_region(region);
    }
    if let Some(prefix) = prefix {
        config = config.with_prefix(prefix);
    }
    if let (Some(id), Some(secret)) = (access_key, secret_key) {
        config = config.with_credentials(id, secret);
    }
    Ok(config)
}
