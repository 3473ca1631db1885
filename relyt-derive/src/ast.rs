//! The derive input reduced to what the expansion needs: the struct and its named fields with
//! their parsed attributes and final column names.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, ExprPath, Fields, Generics, Ident, Type};

use crate::attr::{self, FieldRole};
use crate::ctxt::Ctxt;

/// A struct with named fields that `RelytRecord` can be derived for.
pub(crate) struct Container<'a> {
    /// The struct's name.
    pub(crate) ident: &'a Ident,
    /// The struct's generics, including its where clause.
    pub(crate) generics: &'a Generics,
    /// Struct-level `#[relyt(...)]` attributes.
    pub(crate) attrs: attr::Container,
    /// All fields in declaration order, skipped ones included.
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field of the struct.
pub(crate) struct Field<'a> {
    /// The field's name as written (possibly a raw identifier).
    pub(crate) ident: &'a Ident,
    /// The field's type.
    pub(crate) ty: &'a Type,
    /// Field-level `#[relyt(...)]` attributes.
    pub(crate) attrs: attr::Field,
    /// The column name: `rename`, else the field name under `rename_all`.
    pub(crate) column: String,
}

/// How the value of a column is encoded.
pub(crate) enum Encoding<'a> {
    /// Through the runtime's `Encode` trait.
    Native,
    /// `#[relyt(json)]`: through `serde::Serialize`.
    Json,
    /// `#[relyt(with = "...")]`: through a user function.
    With(&'a ExprPath),
}

impl<'a> Container<'a> {
    /// Reads the derive input. Returns `None` (with errors recorded) if it is not a struct with
    /// named fields; attributes are parsed either way so that their errors are reported too.
    pub(crate) fn from_ast(cx: &mut Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::Container::from_ast(cx, &input.attrs);
        let ident = &input.ident;

        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => Some(&fields.named),
                Fields::Unnamed(fields) => {
                    for field in &fields.unnamed {
                        attr::Field::from_ast(cx, &field.attrs);
                    }
                    cx.error_spanned_by(
                        fields,
                        format_args!(
                            "`RelytRecord` cannot be derived for tuple struct `{ident}`: \
                             columns are named after fields, so the struct needs named fields"
                        ),
                    );
                    None
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        ident,
                        format_args!(
                            "`RelytRecord` cannot be derived for unit struct `{ident}`: \
                             a record needs at least one named field"
                        ),
                    );
                    None
                }
            },
            Data::Enum(data) => {
                let enum_token = data.enum_token;
                cx.error_spanned_by(
                    quote!(#enum_token #ident),
                    format_args!(
                        "`RelytRecord` cannot be derived for enum `{ident}`: \
                         only structs with named fields can be records"
                    ),
                );
                None
            }
            Data::Union(data) => {
                let union_token = data.union_token;
                cx.error_spanned_by(
                    quote!(#union_token #ident),
                    format_args!(
                        "`RelytRecord` cannot be derived for union `{ident}`: \
                         only structs with named fields can be records"
                    ),
                );
                None
            }
        }?;

        let rename_all = attrs.rename_all.get().copied();
        let fields = named
            .iter()
            .filter_map(|field| {
                // `Fields::Named` always has identifiers; a field without one is skipped
                // rather than unwrapped.
                let ident = field.ident.as_ref()?;
                let attrs = attr::Field::from_ast(cx, &field.attrs);
                let column = match attrs.rename.get() {
                    Some(lit) => lit.value(),
                    None => {
                        let name = ident.unraw().to_string();
                        match rename_all {
                            Some(rule) => rule.apply_to_field(&name),
                            None => name,
                        }
                    }
                };
                Some(Field {
                    ident,
                    ty: &field.ty,
                    attrs,
                    column,
                })
            })
            .collect();

        Some(Container {
            ident,
            generics: &input.generics,
            attrs,
            fields,
        })
    }

    /// The fields that become columns, in declaration order.
    pub(crate) fn columns(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields
            .iter()
            .filter(|field| !field.attrs.skip.is_set())
    }

    /// The path of the runtime crate: `crate = "..."` or `::relyt_sdk`.
    pub(crate) fn crate_path(&self) -> TokenStream {
        match self.attrs.crate_path.get() {
            Some(path) => quote!(#path),
            None => quote!(::relyt_sdk),
        }
    }
}

impl Field<'_> {
    /// Whether the column is part of the primary key.
    pub(crate) fn is_key(&self) -> bool {
        self.attrs.role() == FieldRole::Key
    }

    /// How the column's value is encoded. `json` and `with` together are rejected by the checks.
    pub(crate) fn encoding(&self) -> Encoding<'_> {
        if self.attrs.json.is_set() {
            Encoding::Json
        } else if let Some(path) = self.attrs.with.get() {
            Encoding::With(path)
        } else {
            Encoding::Native
        }
    }

    /// Where errors about this field's column name point: the `rename` string if there is one,
    /// else the field name.
    pub(crate) fn column_span(&self) -> Span {
        match self.attrs.rename.get() {
            Some(lit) => lit.span(),
            None => self.ident.span(),
        }
    }

    /// Where the generated code for this field points, so that type errors (an unsupported
    /// field type, a missing `Serialize`) are reported at the field's type.
    ///
    /// Only the location is taken from the type; name resolution stays at the call site, so the
    /// generated locals still resolve when the type comes from another macro.
    pub(crate) fn type_span(&self) -> Span {
        Span::call_site().located_at(self.ty.span())
    }
}
