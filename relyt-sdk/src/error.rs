//! Errors of the SDK.
//!
//! One error type per layer a user can see: [`EncodeError`] for a record that cannot be encoded (it
//! rejects that record alone, the file it was written into stays valid), and [`Error`] for everything
//! else. Each says what went wrong and, where the user can act, what to do.

use std::fmt;

/// A `Result` whose error defaults to the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error the SDK returns.
///
/// The enum is `#[non_exhaustive]`: later versions add variants (S3, database, import failures)
/// without a breaking change, so match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record could not be encoded (a NUL byte in a string, a number out of range, ...).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The configuration is invalid; the message says which setting and what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An S3 request failed.
    #[error("S3 {operation} of {key:?} failed: {message}")]
    S3 {
        /// The S3 operation, e.g. `UploadPart`.
        operation: &'static str,
        /// The object key.
        key: String,
        /// The service's or the network's error, with presigned query strings removed.
        message: String,
        /// Whether retrying may help (network errors, timeouts, 5xx, throttling).
        transient: bool,
    },
    /// A bug in the SDK (a background task panicked). Staged files are kept; the job can be
    /// resumed.
    #[error("internal error: {0}")]
    Internal(String),
    /// `insert` or `flush` was called after `shutdown`.
    #[error("the processor is shut down; build a new one to load more rows")]
    Closed,
    /// The processor failed earlier (an import failed, or the error budget ran out); this is
    /// that error, returned by every later call. Staged files that were not imported are kept.
    #[error("the processor has failed: {0}")]
    Failed(std::sync::Arc<Error>),
    /// More records were rejected than `max_error_records` allows.
    #[error(
        "{rejected} records rejected while loading {table}, more than max_error_records = \
         {budget}; first: {}; the rejects of imported files are in relyt_sys.relyt_loader_reject, \
         the file that went over the budget was rolled back whole",
        first.join(" | ")
    )]
    TooManyRejects {
        /// The target table.
        table: String,
        /// Records rejected so far.
        rejected: u64,
        /// The budget.
        budget: u64,
        /// The first rejects: where (file and line, when known) and why.
        first: Vec<String>,
    },
    /// A database statement failed. The message has presigned URLs removed; the SQLSTATE decides
    /// whether the failure is transient (retry) or caused by the data (reject the rows).
    #[error("{context}: {message}{}", code.as_deref().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default())]
    Database {
        /// What the SDK was doing.
        context: String,
        /// PostgreSQL's message (and detail), redacted.
        message: String,
        /// The SQLSTATE, when the server sent one.
        code: Option<String>,
        /// Without a SQLSTATE: whether the failure was in reaching the server (I/O, a pool
        /// timeout), which a retry may cure, rather than in reading its answer.
        transient: bool,
    },
}

impl Error {
    /// The SQLSTATE of a database error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The 1-based line of the `COPY` input that a database error points at (from its CONTEXT,
    /// `COPY t, line N`): for a record spanning several lines, its last one.
    pub fn copy_line(&self) -> Option<u64> {
        let Self::Database { message, .. } = self else {
            return None;
        };
        let at = message.find("context: COPY ")?;
        let rest = &message[at..];
        let line = rest.find(", line ")? + ", line ".len();
        let digits: String = rest[line..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// Wraps a sqlx error with what the SDK was doing, removing presigned URLs from its text.
    pub(crate) fn database(context: impl Into<String>, err: sqlx::Error) -> Self {
        use crate::staging::redact_urls;
        let (message, code) = match &err {
            sqlx::Error::Database(db) => {
                let mut message = db.message().to_owned();
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    // Row data stays out of errors and logs: DETAIL lines that quote a row or
                    // a key are dropped, and CONTEXT is cut before the quoted value
                    // (`COPY t, line 5, column c: "value"` keeps `COPY t, line 5, column c`).
                    if let Some(detail) = pg.detail()
                        && !detail.starts_with("Failing row contains")
                        && !detail.starts_with("Key (")
                    {
                        message.push_str("; ");
                        message.push_str(detail);
                    }
                    if let Some(context) = pg.r#where() {
                        let context = context.split(": \"").next().unwrap_or_default();
                        message.push_str("; context: ");
                        message.push_str(context);
                    }
                }
                (message, db.code().map(|c| c.into_owned()))
            }
            other => (other.to_string(), None),
        };
        // Reaching the server failed: I/O, a pool timeout, TLS, or a protocol error (seen while
        // a restarting server answers the SSL request with garbage).
        let transient = matches!(
            err,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed
        );
        Self::Database {
            context: context.into(),
            message: redact_urls(&message),
            code,
            transient,
        }
    }
}

/// Why a single record could not be encoded.
///
/// The record is left out of the file (the bytes written for it are rolled back), so the file stays
/// valid; the processor counts such records against its error budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", Column(*column))]
pub struct EncodeError {
    column: Option<&'static str>,
    kind: EncodeErrorKind,
}

struct Column(Option<&'static str>);

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "column \"{name}\": "),
            None => Ok(()),
        }
    }
}

/// The kind of an [`EncodeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeErrorKind {
    /// Text contains a NUL byte (`\0`), which PostgreSQL text types cannot store.
    NulByte,
    /// A value does not fit the database type it maps to.
    OutOfRange {
        /// The value, as text.
        value: String,
        /// What it does not fit, e.g. `bigint`.
        target: &'static str,
    },
    /// A `#[relyt(json)]` field failed to serialize.
    Json(String),
    /// A custom encoder (`#[relyt(with = ...)]`) refused the value.
    Custom(String),
}

impl fmt::Display for EncodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NulByte => f.write_str(
                "text contains a NUL byte (\\0), which PostgreSQL cannot store; \
                 strip it or map the field to bytea (Vec<u8>)",
            ),
            Self::OutOfRange { value, target } => {
                write!(f, "value {value} is out of range for {target}")
            }
            Self::Json(msg) => write!(f, "cannot serialize to JSON: {msg}"),
            Self::Custom(msg) => f.write_str(msg),
        }
    }
}

impl EncodeError {
    /// An error of the given kind, not yet tied to a column.
    pub fn new(kind: EncodeErrorKind) -> Self {
        Self { column: None, kind }
    }

    /// An error raised by a custom encoder, with its own message.
    ///
    /// ```
    /// # use relyt_sdk::EncodeError;
    /// let err = EncodeError::custom("negative durations are not allowed");
    /// assert_eq!(err.to_string(), "negative durations are not allowed");
    /// ```
    pub fn custom(message: impl fmt::Display) -> Self {
        Self::new(EncodeErrorKind::Custom(message.to_string()))
    }

    pub(crate) fn nul_byte() -> Self {
        Self::new(EncodeErrorKind::NulByte)
    }

    pub(crate) fn out_of_range(value: impl fmt::Display, target: &'static str) -> Self {
        Self::new(EncodeErrorKind::OutOfRange {
            value: value.to_string(),
            target,
        })
    }

    /// The column whose value failed, when known.
    pub fn column(&self) -> Option<&'static str> {
        self.column
    }

    /// What went wrong.
    pub fn kind(&self) -> &EncodeErrorKind {
        &self.kind
    }

    /// Ties the error to a column, keeping the innermost column if one is already set.
    pub(crate) fn in_column(mut self, column: &'static str) -> Self {
        self.column.get_or_insert(column);
        self
    }
}
