//! Import: moving a staged file into the target table.
//!
//! Each method is a dialect of the same step: the rows of one staged object, appended to the
//! target table's columns in one statement (so they commit or fail together).
//!
//! - [`ImportMethod::ServerPull`]: the PostgreSQL server fetches the object itself through a
//!   short-lived presigned URL, `COPY ... FROM PROGRAM 'curl -sfS <url>'`. The URL never lands in a
//!   catalog (unlike a `file_fdw` option, which every role can read). Needs superuser or
//!   `pg_execute_server_program`, and `curl` on the database host.
//! - [`ImportMethod::ClientCopy`]: the SDK streams the object through `COPY ... FROM STDIN`. Works
//!   on any PostgreSQL, managed services included.

pub(crate) mod external;
pub(crate) mod narrow;
pub mod postgres;
pub mod relyt;

/// How staged files reach the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ImportMethod {
    /// The database server pulls the object through a presigned URL (`COPY FROM PROGRAM curl`).
    ServerPull,
    /// The SDK streams the object through `COPY FROM STDIN`.
    #[default]
    ClientCopy,
    /// Relyt: `CREATE EXTERNAL TABLE ... LOCATION('s3://...')`, `INSERT ... SELECT [ON CONFLICT]`,
    /// `DROP FOREIGN TABLE` (see [`relyt`]). Not tested against a Relyt server: no Relyt server
    /// runs where this SDK is built; its SQL is covered by snapshot tests only. Data errors are
    /// not narrowed to rows with this method (the import fails), and when one file holds a key
    /// more than once, which of those rows wins is up to the server.
    RelytExternalTable,
}
