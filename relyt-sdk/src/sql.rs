//! The one audited place where SQL text is built.
//!
//! Identifiers are always quoted with [`quote_ident`]; values that cannot be bound (options of DDL
//! and `COPY`, which take no parameters) are quoted with [`quote_literal`]; nothing else is ever
//! formatted into a statement. sqlx 0.9 accepts dynamic SQL only through `AssertSqlSafe`, and this
//! module is the only user of it.

use std::fmt;

use crate::error::{Error, Result};

/// Quotes an identifier: `"name"`, with every `"` doubled. Always quoted, so reserved words, mixed
/// case and any character are kept as they are.
///
/// ```
/// assert_eq!(relyt_sdk::sql::quote_ident("Weird \"name\""), "\"Weird \"\"name\"\"\"");
/// ```
pub fn quote_ident(ident: &str) -> String {
    quote(ident, '"')
}

/// Quotes a string literal: `'text'`, with every `'` doubled (standard_conforming_strings, the
/// default since PostgreSQL 9.1, makes backslashes plain characters).
///
/// ```
/// assert_eq!(relyt_sdk::sql::quote_literal("it's"), "'it''s'");
/// ```
pub fn quote_literal(text: &str) -> String {
    quote(text, '\'')
}

/// Wraps `text` in `q`, doubling every `q` inside: SQL's one quoting rule, for identifiers (`"`)
/// and string literals (`'`).
fn quote(text: &str, q: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(q);
    for c in text.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// Quotes a word for a POSIX shell: `'text'`, with every `'` written as `'\''`.
pub(crate) fn quote_shell(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A table name, optionally schema-qualified, parsed as PostgreSQL reads it: unquoted parts are
/// folded to lower case, `"quoted"` parts are kept exactly (with `""` for a quote).
///
/// ```
/// use relyt_sdk::sql::TableName;
/// let t: TableName = "Public.\"My Events\"".parse()?;
/// assert_eq!(t.schema(), Some("public"));
/// assert_eq!(t.name(), "My Events");
/// assert_eq!(t.to_string(), "\"public\".\"My Events\"");
/// # Ok::<(), relyt_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    /// A table from its parts, taken literally (no folding, no parsing).
    pub fn new(schema: Option<&str>, name: &str) -> Self {
        Self {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The schema, if the name was qualified.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table's own name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Writes the quoted, qualified name: `"schema"."table"`.
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{}.", quote_ident(schema))?;
        }
        f.write_str(&quote_ident(&self.name))
    }
}

impl std::str::FromStr for TableName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Config(format!(
                "table name {s:?} is not valid: {why}; write `table` or `schema.table`, with \
                 double quotes around parts that hold dots, quotes or upper case letters"
            ))
        };
        let mut parts = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        Some('"') => break,
                        Some(c) => part.push(c),
                        None => return Err(bad("a quoted part is not closed")),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '"' {
                        return Err(bad("a quote in the middle of a part"));
                    }
                    part.extend(c.to_lowercase());
                    chars.next();
                }
                if part.trim() != part {
                    return Err(bad("spaces around a part"));
                }
            }
            if part.is_empty() {
                return Err(bad("an empty part"));
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return Err(bad("text after a quoted part")),
            }
        }
        match parts.len() {
            1 => Ok(Self {
                schema: None,
                name: parts.remove(0),
            }),
            2 => {
                let name = parts.remove(1);
                Ok(Self {
                    schema: Some(parts.remove(0)),
                    name,
                })
            }
            _ => Err(bad("more than two parts")),
        }
    }
}

/// A comma-separated list of quoted column names.
pub(crate) fn column_list<'a>(columns: impl IntoIterator<Item = &'a str>) -> String {
    columns
        .into_iter()
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks a statement built by this module as safe for sqlx.
pub(crate) fn statement(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        let t: TableName = "events".parse().expect("valid");
        assert_eq!((t.schema(), t.name()), (None, "events"));
        let t: TableName = "\"a.b\".\"c\"\"d\"".parse().expect("valid");
        assert_eq!((t.schema(), t.name()), (Some("a.b"), "c\"d"));
        assert_eq!(t.to_string(), "\"a.b\".\"c\"\"d\"");
        for bad in ["", ".", "a.", "a.b.c", "\"open", "a\"b", "\"a\"b", " a"] {
            assert!(bad.parse::<TableName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_literal("a'b\\"), "'a''b\\'");
        assert_eq!(quote_shell("it's"), r"'it'\''s'");
        assert_eq!(column_list(["a", "B"]), "\"a\", \"B\"");
    }
}
