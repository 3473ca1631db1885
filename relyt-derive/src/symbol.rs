//! Names of the `#[relyt(...)]` attributes.
//!
//! Every attribute the macro understands is spelled exactly once, here, so the parser, the error
//! messages and the lists of expected attributes cannot drift apart.

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// The name of one attribute, compared against parsed paths and identifiers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Symbol(&'static str);

impl Symbol {
    /// The attribute name as written by the user.
    pub(crate) const fn as_str(self) -> &'static str {
        self.0
    }
}

/// The helper attribute itself: `#[relyt(...)]`.
pub(crate) const RELYT: Symbol = Symbol("relyt");

// Container attributes.
/// `#[relyt(table = "name")]`: the default table of the record.
pub(crate) const TABLE: Symbol = Symbol("table");
/// `#[relyt(schema = "name")]`: the default schema of the record.
pub(crate) const SCHEMA: Symbol = Symbol("schema");
/// `#[relyt(rename_all = "...")]`: a case convention applied to every field name.
pub(crate) const RENAME_ALL: Symbol = Symbol("rename_all");
/// `#[relyt(crate = "path")]`: where the runtime crate lives.
pub(crate) const CRATE: Symbol = Symbol("crate");

// Field attributes.
/// `#[relyt(rename = "col")]`: the column name of the field.
pub(crate) const RENAME: Symbol = Symbol("rename");
/// `#[relyt(skip)]`: the field is not a column.
pub(crate) const SKIP: Symbol = Symbol("skip");
/// `#[relyt(key)]`: the field is (part of) the primary key.
pub(crate) const KEY: Symbol = Symbol("key");
/// `#[relyt(json)]`: the field is encoded as JSON through serde.
pub(crate) const JSON: Symbol = Symbol("json");
/// `#[relyt(with = "path")]`: the field is encoded by a user function.
pub(crate) const WITH: Symbol = Symbol("with");

/// Attributes accepted on the struct, in the order they are listed in error messages.
pub(crate) const CONTAINER_ATTRS: &[Symbol] = &[TABLE, SCHEMA, RENAME_ALL, CRATE];

/// Attributes accepted on a field, in the order they are listed in error messages.
pub(crate) const FIELD_ATTRS: &[Symbol] = &[RENAME, SKIP, KEY, JSON, WITH];

/// Formats a list of symbols as "`a`, `b`, `c`" for error messages.
pub(crate) fn list(symbols: &[Symbol]) -> String {
    let quoted: Vec<String> = symbols.iter().map(|s| format!("`{s}`")).collect();
    quoted.join(", ")
}

/// The symbol closest to a misspelled `word`, if one is close enough to be a likely typo.
pub(crate) fn closest(word: &str, symbols: &[Symbol]) -> Option<Symbol> {
    symbols
        .iter()
        .map(|symbol| (edit_distance(word, symbol.0), *symbol))
        .filter(|(distance, symbol)| *distance <= symbol.0.len().div_ceil(3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, symbol)| symbol)
}

/// Levenshtein distance, counting an adjacent transposition (`tabel`/`table`) as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest("tabel", CONTAINER_ATTRS), Some(TABLE));
        assert_eq!(closest("shema", CONTAINER_ATTRS), Some(SCHEMA));
        assert_eq!(closest("renameall", CONTAINER_ATTRS), Some(RENAME_ALL));
        assert_eq!(closest("renam", FIELD_ATTRS), Some(RENAME));
        assert_eq!(closest("skipped", FIELD_ATTRS), None);
        assert_eq!(closest("primary_key", FIELD_ATTRS), None);
        assert_eq!(closest("sum", FIELD_ATTRS), None);
        assert_eq!(closest("", FIELD_ATTRS), None);
    }
}
