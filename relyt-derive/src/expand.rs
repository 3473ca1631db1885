//! Generation of the `RelytRecord` impl.

use std::collections::HashSet;

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::DeriveInput;

use crate::ast::{Container, Encoding, Field};
use crate::check;
use crate::ctxt::Ctxt;

/// Expands `#[derive(RelytRecord)]`: parse attributes, build the AST, check it, generate code.
///
/// Returns every problem found as one combined error (one `compile_error!` per problem).
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut cx = Ctxt::new();
    let container = Container::from_ast(&mut cx, input);
    if let Some(container) = &container {
        check::check(&mut cx, container);
    }
    cx.check()?;
    match container {
        Some(container) => Ok(generate(&container)),
        // `from_ast` records an error whenever it returns `None`; this is only a fallback.
        None => Err(syn::Error::new_spanned(
            &input.ident,
            "`RelytRecord` can only be derived for structs with named fields",
        )),
    }
}

/// Generates the impl for a checked container.
fn generate(container: &Container<'_>) -> TokenStream {
    let krate = container.crate_path();
    let ident = container.ident;
    let (impl_generics, ty_generics, where_clause) = container.generics.split_for_impl();

    let type_params: Vec<&Ident> = container
        .generics
        .type_params()
        .map(|param| &param.ident)
        .collect();

    let columns = container.columns().map(|field| column(&krate, field));
    let encodes = container.columns().map(encode_field);

    // Bound the types of natively encoded fields that mention a type parameter; other fields
    // either have concrete types (checked where they are used) or do not go through `Encode`.
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|clause| clause.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    let mut bounded = HashSet::new();
    for field in container.columns() {
        let ty = field.ty;
        let ty_tokens = quote!(#ty);
        if matches!(field.encoding(), Encoding::Native)
            && mentions_any(ty_tokens.clone(), &type_params)
            && bounded.insert(ty_tokens.to_string())
        {
            predicates.push(quote_spanned!(field.type_span()=> #ty: #krate::__private::Encode));
        }
    }
    let where_clause = if predicates.is_empty() {
        quote!()
    } else {
        quote!(where #(#predicates),*)
    };

    let table = container.attrs.table.get().map(|table| {
        quote! {
            const TABLE: ::core::option::Option<&'static ::core::primitive::str> =
                ::core::option::Option::Some(#table);
        }
    });
    let schema = container.attrs.schema.get().map(|schema| {
        quote! {
            const SCHEMA: ::core::option::Option<&'static ::core::primitive::str> =
                ::core::option::Option::Some(#schema);
        }
    });

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::RelytRecord for #ident #ty_generics #where_clause {
                const COLUMNS: &'static [#krate::__private::Column] = &[#(#columns),*];
                #table
                #schema
                fn encode_row(
                    &self,
                    __row: &mut #krate::__private::RowEncoder<'_>,
                ) -> ::core::result::Result<(), #krate::__private::EncodeError> {
                    #(#encodes)*
                    ::core::result::Result::Ok(())
                }
            }
        };
    }
}

/// The `Column` constant describing one field.
fn column(krate: &TokenStream, field: &Field<'_>) -> TokenStream {
    let name = &field.column;
    let key = field.is_key();
    let ty = field.ty;
    let sql_type = match field.encoding() {
        Encoding::Native => {
            quote_spanned!(field.type_span()=> <#ty as #krate::__private::Encode>::SQL_TYPE)
        }
        Encoding::Json => quote!(#krate::__private::SqlType::JSON),
        Encoding::With(_) => quote!(#krate::__private::SqlType::ANY),
    };
    quote!(#krate::__private::column(#name, #key, #sql_type))
}

/// The statement of `encode_row` that writes one field.
fn encode_field(field: &Field<'_>) -> TokenStream {
    let name = &field.column;
    let member = field.ident;
    match field.encoding() {
        Encoding::Native => {
            quote_spanned!(field.type_span()=> __row.field(#name, &self.#member)?;)
        }
        Encoding::Json => {
            quote_spanned!(field.type_span()=> __row.field_json(#name, &self.#member)?;)
        }
        Encoding::With(path) => {
            quote_spanned!(field.type_span()=> __row.field_with(#name, &self.#member, #path)?;)
        }
    }
}

/// Whether `tokens` (a type) mentions one of the type parameters `params`.
///
/// An identifier counts unless it continues a path (`other::T`), is a lifetime's name (`'T`) or
/// names a macro (`T!()`), so `T`, `Vec<T>`, `T::Assoc` and `<T as Trait>::Out` all count.
/// Erring on the side of a bound is harmless: the bound is on the field's own type.
fn mentions_any(tokens: TokenStream, params: &[&Ident]) -> bool {
    if params.is_empty() {
        return false;
    }
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    tokens.iter().enumerate().any(|(i, token)| match token {
        TokenTree::Ident(ident) => {
            let after_path_sep_or_quote = i
                .checked_sub(1)
                .and_then(|prev| tokens.get(prev))
                .is_some_and(|prev| {
                    matches!(prev, TokenTree::Punct(p) if p.as_char() == ':' || p.as_char() == '\'')
                });
            let is_macro =
                matches!(tokens.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
            !after_path_sep_or_quote && !is_macro && params.contains(&ident)
        }
        TokenTree::Group(group) => mentions_any(group.stream(), params),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}
