//! `#[derive(RelytRecord)]` for [relyt-sdk](https://docs.rs/relyt-sdk).
//!
//! Use the derive through `relyt_sdk::RelytRecord`, which re-exports it; this crate is an
//! implementation detail of `relyt-sdk` and its version is pinned by it.
//!
//! The macro is a small pipeline: `attr` parses `#[relyt(...)]` attributes (their names are the
//! constants in `symbol`), `ast` reduces the input to a struct with named fields and their column
//! names, `check` enforces the rules that span several attributes or fields, and `expand`
//! generates the impl. Problems are collected in a `ctxt::Ctxt` along the way and all reported
//! together, each at the span of the token that caused it; the macro never panics.

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;
mod symbol;

#[cfg(test)]
mod tests;

/// Derives `relyt_sdk::RelytRecord` for a struct with named fields.
///
/// Each field that is not skipped becomes one column, in declaration order, named after the
/// field. The attributes below may be split over several `#[relyt(...)]` attributes.
///
/// # Struct attributes
///
/// - `#[relyt(table = "name")]`: the default table (`RelytRecord::TABLE`).
/// - `#[relyt(schema = "name")]`: the default schema (`RelytRecord::SCHEMA`).
/// - `#[relyt(rename_all = "...")]`: renames every field that has no `rename`; one of
///   `lowercase`, `UPPERCASE`, `PascalCase`, `camelCase`, `snake_case`,
///   `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE`. A raw identifier such as
///   `r#type` is renamed as `type`.
/// - `#[relyt(crate = "path")]`: the path of the `relyt_sdk` crate, if it is not reachable as
///   `::relyt_sdk` (for example when the dependency is renamed).
///
/// # Field attributes
///
/// - `#[relyt(rename = "column")]`: the column name.
/// - `#[relyt(skip)]`: the field is not a column.
/// - `#[relyt(key)]`: the column is part of the primary key.
/// - `#[relyt(json)]`: the value is encoded as JSON; the field type must implement
///   `serde::Serialize`.
/// - `#[relyt(with = "path::to::encode")]`: the value is encoded by a function
///   `fn(&T, &mut FieldEncoder<'_>) -> Result<(), EncodeError>`.
///
/// Fields encoded natively must implement `relyt_sdk::Encode`; for fields whose type mentions
/// a type parameter of the struct, the impl requires that bound.
///
/// # Example
///
/// ```ignore
/// use relyt_sdk::RelytRecord;
///
/// #[derive(RelytRecord)]
/// #[relyt(table = "events", rename_all = "camelCase")]
/// struct Event<'a> {
///     #[relyt(key)]
///     event_id: i64,
///     user_name: &'a str,
///     #[relyt(json)]
///     payload: serde_json::Value,
///     #[relyt(skip)]
///     cached: Option<String>,
/// }
/// ```
#[proc_macro_derive(RelytRecord, attributes(relyt))]
pub fn derive_relyt_record(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
