//! The record trait: how a Rust struct maps to the columns of a table.
//!
//! Implement it with `#[derive(RelytRecord)]`; writing it by hand is possible but rarely needed.

use crate::encode::RowEncoder;
use crate::error::EncodeError;

/// A row type that the SDK can load: an ordered list of columns and an encoder for one row.
///
/// Derive it:
///
/// ```
/// use relyt_sdk::RelytRecord;
///
/// #[derive(RelytRecord)]
/// #[relyt(table = "events", rename_all = "snake_case")]
/// struct Event {
///     #[relyt(key)]
///     id: i64,
///     name: String,
///     #[relyt(rename = "value")]
///     score: Option<f64>,
///     #[relyt(skip)]
///     cached: u8,
/// }
///
/// let names: Vec<_> = Event::COLUMNS.iter().map(|c| c.name()).collect();
/// assert_eq!(names, ["id", "name", "value"]);
/// assert!(Event::COLUMNS[0].is_key());
///
/// let row = Event { id: 7, name: "a, \"b\"".into(), score: None, cached: 0 };
/// assert_eq!(relyt_sdk::encode_to_string(&row).unwrap(), "7,\"a, \"\"b\"\"\",\n");
/// ```
///
/// Field attributes: `rename = "col"`, `skip`, `key` (primary-key column, used for upserts),
/// `json` (encode any `serde::Serialize` value as JSON), `with = "path::to::fn"` (a custom encoder,
/// `fn(&T, &mut FieldEncoder<'_>) -> Result<(), EncodeError>`). Struct attributes: `table = "..."`,
/// `schema = "..."`, `rename_all = "..."`, `crate = "..."`.
pub trait RelytRecord {
    /// The columns, in the order `encode_row` writes them.
    const COLUMNS: &'static [Column];
    /// The table this record loads into by default (`#[relyt(table = "...")]`).
    const TABLE: Option<&'static str> = None;
    /// The schema of [`TABLE`](Self::TABLE) (`#[relyt(schema = "...")]`).
    const SCHEMA: Option<&'static str> = None;

    /// Writes one row: one call to a field method of `row` per column, in the order of
    /// [`COLUMNS`](Self::COLUMNS).
    fn encode_row(&self, row: &mut RowEncoder<'_>) -> Result<(), EncodeError>;
}

/// The names of the primary-key columns of a record, in column order.
pub fn key_columns<T: RelytRecord + ?Sized>() -> impl Iterator<Item = &'static str> {
    T::COLUMNS.iter().filter(|c| c.is_key()).map(|c| c.name())
}

/// One column of a [`RelytRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    name: &'static str,
    key: bool,
    sql_type: SqlType,
}

impl Column {
    /// A column. Used by the derive; call it yourself only for a hand-written [`RelytRecord`].
    pub const fn new(name: &'static str, key: bool, sql_type: SqlType) -> Self {
        Self {
            name,
            key,
            sql_type,
        }
    }

    /// The column's name in the table (unquoted; the SDK quotes it in SQL).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the column is part of the primary key (`#[relyt(key)]`).
    pub const fn is_key(&self) -> bool {
        self.key
    }

    /// The database types the field's Rust type encodes to.
    pub const fn sql_type(&self) -> SqlType {
        self.sql_type
    }
}

/// What database column types a Rust type's text form can be loaded into.
///
/// Used once, when a processor starts, to check the record against the table's catalog so that a
/// clear mismatch (a `bool` field into an `integer` column) is an error before any row is staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlType {
    repr: Repr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repr {
    /// Any column (custom encoders, text).
    Any,
    /// A scalar: its display name and the `pg_type.typname`s it loads into.
    Scalar {
        name: &'static str,
        accepts: &'static [&'static str],
    },
    /// A one-or-more dimensional array of the element type.
    Array(&'static SqlType),
}

/// Column types that read any text: every value loads into them.
const TEXT_TARGETS: &[&str] = &["text", "varchar", "bpchar", "name", "citext"];

/// The built-in type names the compatibility check knows; a column of any other type (a domain,
/// an enum, an extension type) is accepted without a check.
const KNOWN: &[&str] = &[
    "bool",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "text",
    "varchar",
    "bpchar",
    "name",
    "bytea",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "json",
    "jsonb",
    "inet",
    "cidr",
];

impl SqlType {
    /// Loads into any column: text, and values of custom encoders.
    pub const ANY: Self = Self { repr: Repr::Any };
    /// `json` / `jsonb`.
    pub const JSON: Self = Self::scalar("jsonb", &["json", "jsonb"]);
    /// Integers of every width.
    pub const INTEGER: Self = Self::scalar(
        "integer",
        &["int2", "int4", "int8", "numeric", "float4", "float8"],
    );
    /// `real` / `double precision`.
    pub const FLOAT: Self = Self::scalar("double precision", &["float4", "float8", "numeric"]);
    /// `numeric`.
    pub const NUMERIC: Self = Self::scalar("numeric", &["numeric", "float4", "float8"]);
    /// `boolean`.
    pub const BOOL: Self = Self::scalar("boolean", &["bool"]);
    /// `bytea`.
    pub const BYTEA: Self = Self::scalar("bytea", &["bytea"]);
    /// `date`.
    pub const DATE: Self = Self::scalar("date", &["date", "timestamp", "timestamptz"]);
    /// `time`.
    pub const TIME: Self = Self::scalar("time", &["time", "timetz", "interval"]);
    /// `timestamp` (without time zone).
    pub const TIMESTAMP: Self = Self::scalar("timestamp", &["timestamp", "timestamptz", "date"]);
    /// `timestamptz`.
    pub const TIMESTAMPTZ: Self =
        Self::scalar("timestamptz", &["timestamptz", "timestamp", "date"]);
    /// `uuid`.
    pub const UUID: Self = Self::scalar("uuid", &["uuid"]);
    /// `inet`.
    pub const INET: Self = Self::scalar("inet", &["inet", "cidr"]);
    /// A float vector (pgvector `vector`, `halfvec`, Relyt `vecf16`).
    pub const VECTOR: Self = Self::scalar("vector", &["vector", "halfvec", "vecf16", "vecf32"]);

    /// A scalar type with a display name and the `pg_type.typname`s it loads into.
    pub const fn scalar(name: &'static str, accepts: &'static [&'static str]) -> Self {
        Self {
            repr: Repr::Scalar { name, accepts },
        }
    }

    /// An array of `element`.
    pub const fn array(element: &'static SqlType) -> Self {
        Self {
            repr: Repr::Array(element),
        }
    }

    /// A short name for messages, e.g. `bigint`, `text[]`.
    pub fn display_name(&self) -> String {
        match self.repr {
            Repr::Any => "any".to_owned(),
            Repr::Scalar { name, .. } => name.to_owned(),
            Repr::Array(element) => format!("{}[]", element.display_name()),
        }
    }

    /// Whether values of this type load into a column whose `pg_type.typname` is `typname`
    /// (array types are spelt with a leading underscore, as in the catalog: `_int8`).
    ///
    /// ```
    /// use relyt_sdk::SqlType;
    /// assert!(SqlType::INTEGER.loads_into("int8"));
    /// assert!(SqlType::INTEGER.loads_into("text"));
    /// assert!(!SqlType::BOOL.loads_into("int4"));
    /// assert!(SqlType::BOOL.loads_into("my_domain")); // unknown types are not checked
    /// ```
    pub fn loads_into(&self, typname: &str) -> bool {
        if TEXT_TARGETS.contains(&typname) {
            return true;
        }
        match self.repr {
            Repr::Any => true,
            Repr::Scalar { accepts, .. } => {
                accepts.contains(&typname)
                    || !(KNOWN.contains(&typname) || typname.starts_with('_'))
            }
            Repr::Array(element) => match typname.strip_prefix('_') {
                Some(inner) => element.loads_into(inner),
                None => !KNOWN.contains(&typname),
            },
        }
    }
}
