//! The Relyt import method: the SQL that loads staged files through an external table.
//!
//! Relyt descends from Greenplum, and relyt-loader-go (the Go loader this SDK replaces) loads a
//! staged file in three statements, which [`ExternalTableImport::statements`] reproduces:
//!
//! 1. `CREATE EXTERNAL TABLE <ext> (…) LOCATION ('s3://…') FORMAT 'CSV'`, with the target's column
//!    types, over the staged objects, and `LOG ERRORS SEGMENT REJECT LIMIT n ROWS` when server-side
//!    error tolerance is wanted;
//! 2. `INSERT INTO <target> (…) SELECT … FROM <ext>`, with `ON CONFLICT` for tables with a primary
//!    key;
//! 3. `DROP FOREIGN TABLE IF EXISTS <ext>`.
//!
//! This module only builds SQL text; no Relyt server runs in our tests, so the text is covered by
//! snapshot tests and nothing here has been executed against Relyt or Greenplum.
//!
//! # Running the statements
//!
//! Run them, and the checkpoint update that marks the files imported, in **one transaction**:
//! PostgreSQL's DDL is transactional (Greenplum inherits it), so the external table is never
//! visible to another session and disappears with a rollback. That matters for inline keys:
//! Greenplum 7 stores an external table as a foreign table whose `LOCATION` lives in
//! `pg_foreign_table.ftoptions`, which every role can read. Inline keys still reach the server's
//! statement log (`log_statement = 'ddl'`) and `pg_stat_activity` while the statement runs;
//! [`RelytCredentials::ConfigFile`] (Greenplum's `config=` option) keeps them out of SQL entirely.
//!
//! The `CREATE` statement is a [`Secret`]: log [`ImportStatements::redacted`], never the statement
//! itself, and pass database errors through [`ImportStatements::redact`] before showing them.
//!
//! # Several files in one statement
//!
//! [`ExternalTableImport::locations`] takes several objects, one `LOCATION` entry each, as the
//! Relyt loader's batching assumes. Greenplum's own documentation of the `s3` protocol (page
//! "s3:// Protocol", section "s3 Protocol Limitations") allows only **one** URL per `LOCATION`;
//! what Greenplum offers instead is prefix selection: one URL whose key is a prefix reads every
//! object under it. Both forms can be written here (a key may be a prefix); which one Relyt accepts has
//! not been checked against a server. Because a key *is* a prefix, a staged object's key must not
//! be the beginning of another object's key (`…/7.csv` would also read `…/7.csv.bak`): end keys
//! with a fixed suffix.
//!
//! # Repeated keys: which row wins
//!
//! `ON CONFLICT DO UPDATE` fails when one statement touches a row twice, so the rows of a batch are
//! de-duplicated per key with `SELECT DISTINCT ON (<key>)`. Which duplicate survives is decided by
//! the `ORDER BY` that follows, and **the rows of an external table carry no ordinal**: no `ctid`,
//! no line number, and `gp_segment_id` names the segment that read a row, not its position. A
//! segment reads one s3 object at a time and parses it in order, but the rows are then
//! redistributed and sorted by key, and PostgreSQL's sort is not stable; `row_number() OVER ()`
//! would number rows in whatever order they reach one node, which nothing documents. So without
//! help the winner among duplicates is arbitrary (the statement still succeeds).
//!
//! The help is [`ExternalTableImport::ordinal_column`]: when the staged CSV carries, as its first
//! field, a `bigint` sequence number that grows with insertion order (per processor, across files),
//! the plan sorts by it, so the last row wins for [`ConflictMode::Update`] and the first for
//! [`ConflictMode::DoNothing`], deterministically, inside a file and across the files of one
//! statement. Ordering *between* statements (files imported by different importers) is the
//! pipeline's business.

use std::fmt;

use crate::config::{ConflictMode, Secret};
use crate::error::{Error, Result};
use crate::sql::{TableName, column_list, quote_ident, quote_literal};

/// What replaces an inline secret in redacted text.
pub const REDACTED: &str = "***";

/// PostgreSQL's longest identifier (`NAMEDATALEN - 1` bytes); longer names are silently truncated.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Our CSV dialect (see [`crate::encode`]), spelled out rather than left to defaults: `,` between
/// fields, `"` quotes with `""` inside them, NULL as an unquoted empty field (the empty string is
/// `""`), no header, `\n` after every record (named, so that a quoted CR in the first record cannot
/// mislead Greenplum's newline detection), UTF-8 text.
const CSV_FORMAT: &str = concat!(
    "FORMAT 'CSV' (DELIMITER ',' NULL '' QUOTE '\"' ESCAPE '\"' NEWLINE 'LF')\n",
    "ENCODING 'UTF8'"
);

/// A column of the external table: a target column and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalColumn<'a> {
    /// The column's name, as stored in the catalog (it is quoted in the SQL).
    pub name: &'a str,
    /// The target column's type as PostgreSQL formats it (`format_type(atttypid, atttypmod)`), e.g.
    /// `bigint`, `character varying(20)`, `vecf16(3)`. It is written verbatim, since type names
    /// cannot be quoted as a whole: take it from the catalog, never from user input. Text that
    /// could end the statement or open a literal or a comment is refused.
    pub sql_type: &'a str,
}

/// One staged object, as the `s3` protocol addresses it: path style,
/// `s3://<endpoint>/<bucket>/<key>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Location<'a> {
    /// The S3 endpoint, `host[:port]`; a leading `http://` or `https://` is dropped, as the URL has
    /// no room for it. Greenplum then picks the scheme from the configuration file's `encryption`
    /// setting (https unless turned off); what Relyt does with inline keys is not documented, so a
    /// plain-http endpoint may not be reachable this way.
    pub endpoint: &'a str,
    /// The bucket.
    pub bucket: &'a str,
    /// The object key, or a prefix that selects every object under it. Letters, digits and
    /// `! - _ . * ' ( ) /` only (Amazon's safe characters), so the key needs no URL escaping and
    /// cannot be mistaken for an option of the location.
    pub key: &'a str,
    /// The region, e.g. `us-east-1` (`version=2` locations always name one).
    pub region: &'a str,
}

/// How the database authenticates to S3.
#[derive(Debug, Clone, Copy)]
pub enum RelytCredentials<'a> {
    /// Keys written into each location (`accessid=… secret=…`), as relyt-loader-go does. The
    /// statement then holds the secret: see the module documentation.
    Inline {
        /// The access key id.
        access_key_id: &'a str,
        /// The secret access key.
        secret: &'a Secret,
    },
    /// Greenplum's `config=<path>`: an `s3` protocol configuration file, present at this absolute
    /// path on every segment host, holds the keys, so no secret appears in SQL.
    ConfigFile(&'a str),
}

/// The plan of one import through an external table: what to read, where to put it, and how.
///
/// `Debug` is safe to log: the inline secret prints as `Secret(***)`.
///
/// ```
/// use relyt_sdk::config::{ConflictMode, Secret};
/// use relyt_sdk::import::relyt::{
///     ExternalColumn, ExternalTableImport, RelytCredentials, S3Location,
/// };
/// use relyt_sdk::sql::TableName;
///
/// let target: TableName = "public.events".parse()?;
/// let secret = Secret::new("not-a-real-secret");
/// let plan = ExternalTableImport {
///     target: &target,
///     columns: &[
///         ExternalColumn { name: "id", sql_type: "bigint" },
///         ExternalColumn { name: "name", sql_type: "text" },
///     ],
///     key_columns: &["id"],
///     conflict: ConflictMode::Update,
///     ordinal_column: Some("relyt_seq"),
///     locations: &[S3Location {
///         endpoint: "http://127.0.0.1:9000",
///         bucket: "staging",
///         key: "loads/p1/000001.csv",
///         region: "us-east-1",
///     }],
///     credentials: RelytCredentials::Inline { access_key_id: "AKID", secret: &secret },
///     reject_limit: None,
///     external_table: "relyt_ext_p1_000001",
/// };
/// let sql = plan.statements()?;
/// assert!(sql.create.expose().contains("secret=not-a-real-secret"));
/// assert!(!sql.redacted().contains("not-a-real-secret"));
/// assert!(sql.insert.contains("ORDER BY \"id\", \"relyt_seq\" DESC"));
/// # Ok::<(), relyt_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ExternalTableImport<'a> {
    /// The table the rows go to.
    pub target: &'a TableName,
    /// The columns of the staged CSV, in file order (after the ordinal, if any), with the target
    /// columns' types; the same names are inserted into the target.
    pub columns: &'a [ExternalColumn<'a>],
    /// The target's primary key; empty for a table without one (rows are then simply appended).
    pub key_columns: &'a [&'a str],
    /// What to do with a key that is already in the table (ignored without `key_columns`).
    pub conflict: ConflictMode,
    /// The name of an extra first field of every record: a `bigint` that grows with insertion
    /// order. It is read, used to choose among rows with the same key, and not inserted. Without it
    /// the choice among duplicates is arbitrary (see the module documentation).
    pub ordinal_column: Option<&'a str>,
    /// The staged objects to read (at least one).
    pub locations: &'a [S3Location<'a>],
    /// How the database authenticates to S3.
    pub credentials: RelytCredentials<'a>,
    /// Server-side error tolerance: `LOG ERRORS SEGMENT REJECT LIMIT n ROWS`. Rows that fail to
    /// parse or convert are logged and skipped until one segment has rejected `n` of them; then the
    /// statement fails. The limit is **per segment** (the total may be `n` times the segment count:
    /// count the rows returned by [`ImportStatements::read_errors`] against the job's budget), at
    /// least 2 (Greenplum refuses smaller limits), and covers format errors only (a constraint
    /// violation in the target still fails the insert). Greenplum also gives up when the first
    /// `gp_initial_bad_row_limit` rows (1000 by default) are all bad. `None`: the first bad row
    /// fails the import.
    pub reject_limit: Option<u64>,
    /// The external table's name, unique per import (e.g. `relyt_ext_<process>_<file>`), created in
    /// the target's schema (as relyt-loader-go does), so the role needs `CREATE` there. At most 63
    /// bytes: PostgreSQL would truncate a longer name, and two imports could then share a table.
    pub external_table: &'a str,
}

/// The statements of one import, in execution order: [`create`](Self::create),
/// [`insert`](Self::insert), [`read_errors`](Self::read_errors) (when errors are logged), then
/// [`drop`](Self::drop).
///
/// `Debug` and [`redacted`](Self::redacted) never show the inline secret.
#[derive(Debug, Clone)]
pub struct ImportStatements {
    /// `CREATE EXTERNAL TABLE`. With inline credentials it holds the secret, so it is kept as a
    /// [`Secret`]: hand `create.expose()` to the database, log [`redacted`](Self::redacted).
    pub create: Secret,
    /// `INSERT INTO <target> … SELECT … FROM <external table> [ON CONFLICT …]`.
    pub insert: String,
    /// With a reject limit: the rows the insert skipped, read from Greenplum's error log before the
    /// table is dropped (dropping it deletes the log). Columns: `location` (the object's `s3://`
    /// URL, its options cut off on the server so no secret comes back), `linenum` (the line within
    /// that object: documented by Greenplum for `file://` and `gpfdist://` CSV, not for `s3://`),
    /// `errmsg`, `rawdata` (the record as read; with an ordinal column its first field identifies
    /// the row).
    pub read_errors: Option<String>,
    /// `DROP FOREIGN TABLE IF EXISTS <external table>`: Relyt, like Greenplum 7, stores an external
    /// table as a foreign table, and relyt-loader-go drops it this way; `IF EXISTS` makes a retried
    /// cleanup harmless.
    pub drop: String,
    /// `create` with the secret replaced by [`REDACTED`].
    redacted_create: String,
    /// The inline secret, to scrub it from text the database sends back.
    secret: Option<Secret>,
}

impl ImportStatements {
    /// The whole script, `;`-terminated, with the inline secret replaced by [`REDACTED`]: the form
    /// to log.
    pub fn redacted(&self) -> String {
        self.script(&self.redacted_create)
    }

    /// `text` (typically a database error about these statements) with every occurrence of the
    /// inline secret, as written or as quoted in SQL, replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) => {
                let raw = secret.expose();
                let quoted = raw.replace('\'', "''");
                text.replace(&quoted, REDACTED).replace(raw, REDACTED)
            }
            None => text.to_owned(),
        }
    }

    fn script(&self, create: &str) -> String {
        let mut out = String::new();
        for statement in [
            Some(create),
            Some(&*self.insert),
            self.read_errors.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            out.push_str(statement);
            out.push_str(";\n\n");
        }
        out.push_str(&self.drop);
        out.push_str(";\n");
        out
    }
}

impl fmt::Display for ImportStatements {
    /// The redacted script (see [`ImportStatements::redacted`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl ExternalTableImport<'_> {
    /// Checks the plan and builds its statements.
    ///
    /// Fails with [`Error::Config`] when the plan is incomplete or would not be read as meant: no
    /// location or column, a key that is not a column, a name used twice, an external table name
    /// that is empty or too long, a reject limit Greenplum refuses, a location part with spaces or
    /// characters the `s3` protocol would misread, or a column type that is not a plain type name.
    pub fn statements(&self) -> Result<ImportStatements> {
        self.validate()?;
        let external = TableName::new(self.target.schema(), self.external_table);
        let secret = match self.credentials {
            RelytCredentials::Inline { secret, .. } => Some(secret.clone()),
            RelytCredentials::ConfigFile(_) => None,
        };
        let redacted_create = self.create_sql(&external, REDACTED);
        let create = match &secret {
            Some(secret) => self.create_sql(&external, secret.expose()),
            None => redacted_create.clone(),
        };
        Ok(ImportStatements {
            create: Secret::new(create),
            insert: self.insert_sql(&external),
            read_errors: self.reject_limit.map(|_| read_errors_sql(&external)),
            drop: format!("DROP FOREIGN TABLE IF EXISTS {external}"),
            redacted_create,
            secret,
        })
    }

    /// `CREATE EXTERNAL TABLE`, with `secret` written for inline credentials (ignored otherwise).
    fn create_sql(&self, external: &TableName, secret: &str) -> String {
        let mut columns = Vec::with_capacity(self.columns.len() + 1);
        if let Some(ordinal) = self.ordinal_column {
            columns.push(format!("{} bigint", quote_ident(ordinal)));
        }
        columns.extend(
            self.columns
                .iter()
                .map(|c| format!("{} {}", quote_ident(c.name), c.sql_type)),
        );
        let locations = self
            .locations
            .iter()
            .map(|l| format!("    {}", quote_literal(&self.location(l, secret))))
            .collect::<Vec<_>>()
            .join(",\n");
        let mut sql = format!(
            "CREATE EXTERNAL TABLE {external} ({})\nLOCATION (\n{locations}\n)\n{CSV_FORMAT}",
            columns.join(", ")
        );
        if let Some(limit) = self.reject_limit {
            sql.push_str(&format!("\nLOG ERRORS SEGMENT REJECT LIMIT {limit} ROWS"));
        }
        sql
    }

    /// One `LOCATION` entry (before SQL quoting): the URL, then space-separated options.
    fn location(&self, location: &S3Location<'_>, secret: &str) -> String {
        let auth = match self.credentials {
            RelytCredentials::Inline { access_key_id, .. } => {
                format!("accessid={access_key_id} secret={secret}")
            }
            RelytCredentials::ConfigFile(path) => format!("config={path}"),
        };
        format!(
            "s3://{}/{}/{} {auth} region={} version=2",
            endpoint_host(location.endpoint),
            location.bucket,
            location.key,
            location.region
        )
    }

    /// `INSERT … SELECT`, de-duplicated per key when a conflict clause needs it.
    fn insert_sql(&self, external: &TableName) -> String {
        let columns = column_list(self.columns.iter().map(|c| c.name));
        let head = format!("INSERT INTO {} ({columns})\nSELECT ", self.target);
        let from = format!("{columns}\nFROM {external}");
        // Among rows with the same key, the one sorted first survives DISTINCT ON: the newest for
        // an update (last write wins), the oldest for DO NOTHING (first write wins).
        let (direction, action) = match self.conflict {
            _ if self.key_columns.is_empty() => return format!("{head}{from}"),
            ConflictMode::Insert => return format!("{head}{from}"),
            ConflictMode::Update => {
                let set = self
                    .columns
                    .iter()
                    .filter(|c| !self.key_columns.contains(&c.name))
                    .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c.name)))
                    .collect::<Vec<_>>();
                if set.is_empty() {
                    // Every column is part of the key: there is nothing to update.
                    ("DESC", "DO NOTHING".to_owned())
                } else {
                    ("DESC", format!("DO UPDATE SET {}", set.join(", ")))
                }
            }
            ConflictMode::DoNothing => ("ASC", "DO NOTHING".to_owned()),
        };
        let keys = column_list(self.key_columns.iter().copied());
        let order = match self.ordinal_column {
            Some(ordinal) => format!("\nORDER BY {keys}, {} {direction}", quote_ident(ordinal)),
            None => String::new(),
        };
        format!("{head}DISTINCT ON ({keys}) {from}{order}\nON CONFLICT ({keys}) {action}")
    }

    fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config(message));
        let ext = self.external_table;
        if ext.is_empty() {
            return bad(
                "the external table name is empty; give each import a unique name, \
                        e.g. relyt_ext_<process>_<file>"
                    .to_owned(),
            );
        }
        if ext.len() > MAX_IDENTIFIER_BYTES {
            return bad(format!(
                "the external table name {ext:?} is {} bytes; PostgreSQL truncates names to \
                 {MAX_IDENTIFIER_BYTES} bytes, so two imports could share a table: use a shorter \
                 name",
                ext.len()
            ));
        }
        if self.columns.is_empty() {
            return bad(format!(
                "no columns to import into {}; list the columns of the staged files",
                self.target
            ));
        }
        if self.locations.is_empty() {
            return bad(format!(
                "no staged object to import into {}; give at least one S3 location",
                self.target
            ));
        }
        let mut names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        names.extend(self.ordinal_column);
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return bad(
                    "a column name is empty; use the names of the target's columns".to_owned(),
                );
            }
            if names[..i].contains(name) {
                return bad(format!(
                    "column {name:?} appears twice among the columns (and the ordinal column); \
                     name each column once"
                ));
            }
        }
        for column in self.columns {
            check_type(column)?;
        }
        for (i, key) in self.key_columns.iter().enumerate() {
            if !self.columns.iter().any(|c| c.name == *key) {
                return bad(format!(
                    "key column {key:?} is not among the imported columns; import every \
                     primary key column of {}",
                    self.target
                ));
            }
            if self.key_columns[..i].contains(key) {
                return bad(format!("key column {key:?} is listed twice; list it once"));
            }
        }
        if let Some(limit) = self.reject_limit
            && !(2..=i32::MAX as u64).contains(&limit)
        {
            return bad(format!(
                "reject limit {limit} is out of range: Greenplum takes SEGMENT REJECT LIMIT \
                 2 to {} ROWS; use no limit to fail on the first bad row",
                i32::MAX
            ));
        }
        for location in self.locations {
            check_location(location)?;
        }
        match self.credentials {
            RelytCredentials::Inline {
                access_key_id,
                secret,
            } => {
                check_option("access key id", access_key_id, |_| true)?;
                // Never quote the secret in the message.
                if secret.expose().is_empty() || !is_option_text(secret.expose(), |_| true) {
                    return bad("the S3 secret key is empty or holds spaces or control \
                                characters, which the s3 protocol's options cannot carry"
                        .to_owned());
                }
            }
            RelytCredentials::ConfigFile(path) => {
                check_option("s3 configuration file path", path, |_| true)?;
                if !path.starts_with('/') {
                    return bad(format!(
                        "the s3 configuration file path {path:?} is relative; give the absolute \
                         path the file has on every segment host"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The endpoint without its scheme and trailing `/`.
fn endpoint_host(endpoint: &str) -> &str {
    let lower = endpoint.to_ascii_lowercase();
    let host = ["https://", "http://"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map_or(endpoint, |scheme| &endpoint[scheme.len()..]);
    host.trim_end_matches('/')
}

/// `SELECT` from Greenplum's error log of `external`; the argument is a qualified name in text,
/// which `gp_read_error_log` parses as SQL does (so the quoted name is quoted once more, as a
/// literal).
fn read_errors_sql(external: &TableName) -> String {
    format!(
        "SELECT split_part(filename, ' ', 1) AS location, linenum, errmsg, rawdata\n\
         FROM gp_read_error_log({})\nORDER BY location, linenum",
        quote_literal(&external.to_string())
    )
}

/// Whether `text` can be one option value of an `s3` location: options are separated by spaces.
fn is_option_text(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    text.chars()
        .all(|c| !c.is_whitespace() && !c.is_control() && allowed(c))
}

fn check_option(what: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<()> {
    if value.is_empty() || !is_option_text(value, allowed) {
        return Err(Error::Config(format!(
            "the {what} {value:?} is empty or holds characters an s3 location cannot carry \
             (spaces, control characters, or ones outside its alphabet)"
        )));
    }
    Ok(())
}

fn check_location(location: &S3Location<'_>) -> Result<()> {
    let host = endpoint_host(location.endpoint);
    check_option("S3 endpoint (host[:port])", host, |c| {
        c.is_ascii_alphanumeric() || "-.:[]_".contains(c)
    })?;
    check_option("S3 bucket", location.bucket, |c| {
        c.is_ascii_alphanumeric() || "-._".contains(c)
    })?;
    check_option("S3 object key", location.key, |c| {
        c.is_ascii_alphanumeric() || "!-_.*'()/".contains(c)
    })?;
    check_option("S3 region", location.region, |c| {
        c.is_ascii_alphanumeric() || "-_".contains(c)
    })
}

/// Refuses a type that could be more than a type name: a statement end, a literal, a comment, a
/// dollar quote, or an unbalanced quoted identifier.
fn check_type(column: &ExternalColumn<'_>) -> Result<()> {
    let ty = column.sql_type;
    let suspicious = ty.trim().is_empty()
        || ty.chars().any(|c| c.is_control() || ";'$\\".contains(c))
        || ty.contains("--")
        || ty.contains("/*")
        || ty.matches('"').count() % 2 == 1;
    if suspicious {
        return Err(Error::Config(format!(
            "column {:?} has type {ty:?}, which is not a type name as format_type() writes it; \
             take the type from the target table's catalog",
            column.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test/Secret+Key'0";
    /// 64 bytes: one more than PostgreSQL keeps.
    const LONG_NAME: &str = concat!(
        "xxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxx"
    );

    fn location(key: &str) -> S3Location<'_> {
        S3Location {
            endpoint: "https://s3.us-west-2.amazonaws.com",
            bucket: "relyt-staging",
            key,
            region: "us-west-2",
        }
    }

    /// What a plan borrows.
    struct Fixture {
        target: TableName,
        secret: Secret,
        columns: [ExternalColumn<'static>; 4],
        locations: [S3Location<'static>; 1],
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                target: TableName::new(Some("public"), "events"),
                secret: Secret::new(SECRET),
                columns: [
                    ExternalColumn {
                        name: "id",
                        sql_type: "bigint",
                    },
                    ExternalColumn {
                        name: "tenant",
                        sql_type: "character varying(20)",
                    },
                    ExternalColumn {
                        name: "name",
                        sql_type: "text",
                    },
                    ExternalColumn {
                        name: "embedding",
                        sql_type: "vecf16(3)",
                    },
                ],
                locations: [location("loads/p1/000001.csv")],
            }
        }

        /// A plain insert of one object, with inline keys.
        fn plan(&self) -> ExternalTableImport<'_> {
            ExternalTableImport {
                target: &self.target,
                columns: &self.columns,
                key_columns: &[],
                conflict: ConflictMode::Update,
                ordinal_column: None,
                locations: &self.locations,
                credentials: RelytCredentials::Inline {
                    access_key_id: "AKIDEXAMPLE",
                    secret: &self.secret,
                },
                reject_limit: None,
                external_table: "relyt_ext_p1_000001",
            }
        }
    }

    /// The raw script (secret included), for snapshots.
    fn raw(plan: &ExternalTableImport<'_>) -> String {
        let sql = plan.statements().expect("valid plan");
        sql.script(sql.create.expose())
    }

    fn config_error(plan: &ExternalTableImport<'_>) -> String {
        match plan.statements() {
            Err(Error::Config(message)) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn plain_insert() {
        let fx = Fixture::new();
        insta::assert_snapshot!(raw(&fx.plan()));
    }

    #[test]
    fn insert_mode_ignores_the_key() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            key_columns: &["id"],
            conflict: ConflictMode::Insert,
            ..fx.plan()
        };
        assert_eq!(raw(&plan), raw(&fx.plan()));
    }

    #[test]
    fn upsert_composite_key() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            key_columns: &["tenant", "id"],
            conflict: ConflictMode::Update,
            ..fx.plan()
        };
        insta::assert_snapshot!(raw(&plan));
    }

    #[test]
    fn upsert_composite_key_with_ordinal() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            key_columns: &["tenant", "id"],
            ordinal_column: Some("relyt_seq"),
            ..fx.plan()
        };
        insta::assert_snapshot!(raw(&plan));
    }

    #[test]
    fn upsert_every_column_a_key() {
        let fx = Fixture::new();
        let target = TableName::new(Some("public"), "tags");
        let columns = [
            ExternalColumn {
                name: "a",
                sql_type: "integer",
            },
            ExternalColumn {
                name: "b",
                sql_type: "text",
            },
        ];
        let plan = ExternalTableImport {
            target: &target,
            columns: &columns,
            key_columns: &["a", "b"],
            ordinal_column: Some("relyt_seq"),
            ..fx.plan()
        };
        insta::assert_snapshot!(plan.statements().expect("valid plan").insert);
    }

    #[test]
    fn do_nothing() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            key_columns: &["id"],
            conflict: ConflictMode::DoNothing,
            ..fx.plan()
        };
        insta::assert_snapshot!(raw(&plan));
    }

    #[test]
    fn do_nothing_with_ordinal_keeps_the_first() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            key_columns: &["id"],
            conflict: ConflictMode::DoNothing,
            ordinal_column: Some("relyt_seq"),
            ..fx.plan()
        };
        insta::assert_snapshot!(plan.statements().expect("valid plan").insert);
    }

    #[test]
    fn several_locations() {
        let fx = Fixture::new();
        let locations = [
            location("loads/p1/000001.csv"),
            location("loads/p1/000002.csv"),
            S3Location {
                endpoint: "http://127.0.0.1:9000/",
                bucket: "other",
                key: "loads/p1/000003.csv",
                region: "us-east-1",
            },
        ];
        let plan = ExternalTableImport {
            locations: &locations,
            ..fx.plan()
        };
        insta::assert_snapshot!(raw(&plan));
    }

    #[test]
    fn config_file_credentials() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            credentials: RelytCredentials::ConfigFile("/home/gpadmin/s3/s3.conf"),
            key_columns: &["id"],
            ..fx.plan()
        };
        let sql = plan.statements().expect("valid plan");
        assert_eq!(sql.create.expose(), sql.redacted_create);
        assert!(!sql.redacted().contains(REDACTED));
        assert_eq!(sql.redact("text"), "text");
        insta::assert_snapshot!(sql.redacted());
    }

    #[test]
    fn reject_limit() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            reject_limit: Some(100),
            ..fx.plan()
        };
        insta::assert_snapshot!(raw(&plan));
    }

    #[test]
    fn identifiers_needing_quotes() {
        let fx = Fixture::new();
        let target = TableName::new(Some("My \"Schema\""), "Events.2024");
        let columns = [
            ExternalColumn {
                name: "Id",
                sql_type: "bigint",
            },
            ExternalColumn {
                name: "na\"me",
                sql_type: "\"My Type\"",
            },
            ExternalColumn {
                name: "select",
                sql_type: "timestamp with time zone",
            },
        ];
        let locations = [location("loads/p1/it's.csv")];
        let plan = ExternalTableImport {
            target: &target,
            columns: &columns,
            key_columns: &["Id"],
            ordinal_column: Some("Seq\"No"),
            locations: &locations,
            credentials: RelytCredentials::ConfigFile("/etc/s3/it's.conf"),
            reject_limit: Some(2),
            external_table: "Ext \"Weird\"",
            ..fx.plan()
        };
        insta::assert_snapshot!(raw(&plan));
    }

    #[test]
    fn redacted_form_hides_the_secret() {
        let fx = Fixture::new();
        let plan = ExternalTableImport {
            key_columns: &["id"],
            reject_limit: Some(10),
            ..fx.plan()
        };
        let sql = plan.statements().expect("valid plan");
        let quoted = SECRET.replace('\'', "''");
        assert!(
            sql.create
                .expose()
                .contains(&format!("secret={quoted} region="))
        );
        assert!(raw(&plan).contains(&quoted));

        let redacted = sql.redacted();
        assert!(!redacted.contains("Secret+Key"), "{redacted}");
        assert!(redacted.contains("secret=*** region="));
        assert_eq!(sql.to_string(), redacted);
        let debug = format!("{sql:?}");
        assert!(!debug.contains("Secret+Key"), "{debug}");
        let plan_debug = format!("{plan:?}");
        assert!(!plan_debug.contains("Secret+Key"), "{plan_debug}");

        let error = format!("could not read s3://h/b/k accessid=AKIDEXAMPLE secret={SECRET}");
        assert_eq!(
            sql.redact(&error),
            "could not read s3://h/b/k accessid=AKIDEXAMPLE secret=***"
        );
        assert_eq!(sql.redact(&format!("'{quoted}'")), "'***'");
        insta::assert_snapshot!(redacted);
    }

    #[test]
    fn endpoint_scheme_is_dropped() {
        assert_eq!(endpoint_host("HTTPS://s3.example.com/"), "s3.example.com");
        assert_eq!(endpoint_host("http://127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(endpoint_host("s3.example.com"), "s3.example.com");
    }

    /// Each invalid plan fails with a configuration error that names the problem.
    #[test]
    fn invalid_plans() {
        let fx = Fixture::new();
        let base = fx.plan();
        let cases = [
            (
                "no staged object",
                ExternalTableImport {
                    locations: &[],
                    ..base
                },
            ),
            (
                "no columns",
                ExternalTableImport {
                    columns: &[],
                    ..base
                },
            ),
            (
                "\"nope\" is not among",
                ExternalTableImport {
                    key_columns: &["id", "nope"],
                    ..base
                },
            ),
            (
                "listed twice",
                ExternalTableImport {
                    key_columns: &["id", "id"],
                    ..base
                },
            ),
            (
                "name is empty",
                ExternalTableImport {
                    external_table: "",
                    ..base
                },
            ),
            (
                "truncates names",
                ExternalTableImport {
                    external_table: LONG_NAME,
                    ..base
                },
            ),
            (
                "appears twice",
                ExternalTableImport {
                    ordinal_column: Some("name"),
                    ..base
                },
            ),
            (
                "out of range",
                ExternalTableImport {
                    reject_limit: Some(1),
                    ..base
                },
            ),
            (
                "out of range",
                ExternalTableImport {
                    reject_limit: Some(1 << 31),
                    ..base
                },
            ),
            (
                "is relative",
                ExternalTableImport {
                    credentials: RelytCredentials::ConfigFile("s3.conf"),
                    ..base
                },
            ),
            (
                "configuration file path",
                ExternalTableImport {
                    credentials: RelytCredentials::ConfigFile("/etc/s3 conf/s3.conf"),
                    ..base
                },
            ),
        ];
        for (expected, plan) in cases {
            let message = config_error(&plan);
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
        }
        let at_the_limits = ExternalTableImport {
            external_table: &LONG_NAME[1..],
            reject_limit: Some(2),
            ..base
        };
        assert!(at_the_limits.statements().is_ok());
    }

    #[test]
    fn location_parts_that_the_protocol_would_misread() {
        let fx = Fixture::new();
        let bad = [
            location("loads/p1/a b.csv"),
            location("loads/p1/x=1.csv"),
            location(""),
            location("loads/p1/ü.csv"),
            S3Location {
                endpoint: "https://s3.example.com/path",
                ..location("k")
            },
            S3Location {
                bucket: "bucket/with/slash",
                ..location("k")
            },
            S3Location {
                region: "",
                ..location("k")
            },
        ];
        for location in &bad {
            let plan = ExternalTableImport {
                locations: std::slice::from_ref(location),
                ..fx.plan()
            };
            config_error(&plan);
        }

        let secret = Secret::new("has space");
        let plan = ExternalTableImport {
            credentials: RelytCredentials::Inline {
                access_key_id: "AKIDEXAMPLE",
                secret: &secret,
            },
            ..fx.plan()
        };
        let message = config_error(&plan);
        assert!(!message.contains("has space"), "{message}");
    }

    #[test]
    fn types_that_are_not_type_names() {
        let fx = Fixture::new();
        for sql_type in [
            "",
            "text; DROP TABLE t",
            "text -- comment",
            "text /* c */",
            "text DEFAULT 'x'",
            "$$x$$",
            "\"open",
        ] {
            let columns = [ExternalColumn {
                name: "c",
                sql_type,
            }];
            let plan = ExternalTableImport {
                columns: &columns,
                ..fx.plan()
            };
            let message = config_error(&plan);
            assert!(message.contains("format_type"), "{sql_type:?}: {message}");
        }
    }
}
