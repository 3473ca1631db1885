//! Rules that involve more than one attribute or more than one field.

use std::collections::HashMap;

use syn::ext::IdentExt as _;

use crate::ast::{Container, Field};
use crate::ctxt::Ctxt;
use crate::symbol;

/// Runs every check, recording all violations.
pub(crate) fn check(cx: &mut Ctxt, container: &Container<'_>) {
    for field in &container.fields {
        check_skipped(cx, field);
        check_encoding(cx, field);
    }
    check_has_columns(cx, container);
    check_column_names(cx, container);
}

/// A skipped field has no column, so column attributes on it are mistakes.
fn check_skipped(cx: &mut Ctxt, field: &Field<'_>) {
    if !field.attrs.skip.is_set() {
        return;
    }
    let attrs = &field.attrs;
    let role = attrs.role().name();
    let conflicts = [
        (role, attrs.role.key_span()),
        (symbol::RENAME.as_str(), attrs.rename.key_span()),
        (symbol::JSON.as_str(), attrs.json.key_span()),
        (symbol::WITH.as_str(), attrs.with.key_span()),
    ];
    for (name, span) in conflicts {
        if let Some(span) = span {
            cx.error(
                span,
                format_args!(
                    "`{name}` cannot be used on a skipped field: field `{}` has no column",
                    field.ident.unraw()
                ),
            );
        }
    }
}

/// A column is encoded one way: natively, as JSON, or by a custom function.
fn check_encoding(cx: &mut Ctxt, field: &Field<'_>) {
    if field.attrs.json.is_set()
        && let Some(span) = field.attrs.with.key_span()
    {
        cx.error(
            span,
            "`with` cannot be combined with `json`: \
             the column is encoded either as JSON or by the `with` function",
        );
    }
}

/// A record with no columns cannot be loaded anywhere.
fn check_has_columns(cx: &mut Ctxt, container: &Container<'_>) {
    if container.columns().next().is_some() {
        return;
    }
    let ident = container.ident;
    let msg = if container.fields.is_empty() {
        format!("`{ident}` has no fields: a record needs at least one column")
    } else {
        format!("every field of `{ident}` is skipped: a record needs at least one column")
    };
    cx.error(ident.span(), msg);
}

/// Column names must be non-empty and unique, after `rename` and `rename_all`.
fn check_column_names(cx: &mut Ctxt, container: &Container<'_>) {
    let mut seen: HashMap<&str, &Field<'_>> = HashMap::new();
    for field in container.columns() {
        if field.column.is_empty() {
            // Only `rename_all` can get here: an empty `rename` is rejected while parsing.
            cx.error(
                field.column_span(),
                format_args!(
                    "the column name of field `{}` is empty after `rename_all`; \
                     give it a `rename`",
                    field.ident.unraw()
                ),
            );
            continue;
        }
        if let Some(first) = seen.get(field.column.as_str()) {
            cx.error(
                field.column_span(),
                format_args!(
                    "duplicate column `{}`: field `{}` maps to the same column as field `{}`",
                    field.column,
                    field.ident.unraw(),
                    first.ident.unraw()
                ),
            );
        } else {
            seen.insert(&field.column, field);
        }
    }
}
