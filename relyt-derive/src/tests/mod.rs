//! Snapshots of the expansion of representative structs, and of the errors for bad ones.

use proc_macro2::TokenStream;

use crate::expand::expand;

/// Expands `input` and formats the result like `cargo expand` would.
fn pretty(input: TokenStream) -> String {
    let input: syn::DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return format!("test input does not parse: {error}"),
    };
    let output = match expand(&input) {
        Ok(output) => output,
        Err(error) => return format!("unexpected errors:\n{}", messages(error)),
    };
    match syn::parse2::<syn::File>(output.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(error) => format!("expansion does not parse: {error}\n{output}"),
    }
}

/// Expands `input`, which must fail, and lists the error messages.
fn errors(input: TokenStream) -> String {
    let input: syn::DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return format!("test input does not parse: {error}"),
    };
    match expand(&input) {
        Ok(output) => format!("unexpected success:\n{output}"),
        Err(error) => messages(error),
    }
}

fn messages(error: syn::Error) -> String {
    error
        .into_iter()
        .map(|error| format!("- {error}\n"))
        .collect()
}

#[test]
fn plain() {
    insta::assert_snapshot!(pretty(quote::quote! {
        struct Metric {
            ts: i64,
            name: String,
            value: f64,
        }
    }));
}

#[test]
fn renamed() {
    insta::assert_snapshot!(pretty(quote::quote! {
        #[relyt(rename_all = "camelCase", table = "user_events")]
        #[relyt(schema = "analytics")]
        struct UserEvent {
            user_id: i64,
            #[relyt(rename = "kind")]
            r#type: String,
            r#match: bool,
            created_at_ms: i64,
        }
    }));
}

#[test]
fn key_json_with_skip() {
    insta::assert_snapshot!(pretty(quote::quote! {
        #[relyt(table = "events")]
        struct Event {
            #[relyt(key)]
            id: i64,
            #[relyt(json)]
            meta: serde_json::Value,
            #[relyt(with = "codecs::encode_point")]
            location: Point,
            #[relyt(skip)]
            cached: Option<String>,
            #[relyt(key, rename = "tenant")]
            tenant_id: u32,
        }
    }));
}

#[test]
fn generics_and_lifetimes() {
    insta::assert_snapshot!(pretty(quote::quote! {
        struct Row<'a, T: Clone, U, const N: usize>
        where
            U: Default,
        {
            name: &'a str,
            label: Cow<'a, str>,
            value: T,
            same: T,
            values: Vec<T>,
            #[relyt(json)]
            extra: U,
            #[relyt(skip)]
            marker: PhantomData<U>,
            other: other::T,
            fixed: [u8; N],
        }
    }));
}

#[test]
fn crate_path() {
    insta::assert_snapshot!(pretty(quote::quote! {
        #[relyt(crate = "my::reexport::relyt")]
        struct Tiny {
            #[relyt(key)]
            id: u64,
        }
    }));
}

#[test]
fn all_errors_are_collected() {
    insta::assert_snapshot!(errors(quote::quote! {
        #[relyt(table = "", rename_all = "Title Case", frobnicate)]
        #[relyt(skip, table = "t", shema = "s", rename_all = "camelcase")]
        #[relyt(crate = "a b")]
        struct Bad {
            #[relyt(rename = 5, skip = "x", key = true)]
            a: i64,
            #[relyt(rename = "a", rename = "b")]
            b: i64,
            #[relyt(skip, key, json)]
            c: i64,
            #[relyt(json, with = "not a path")]
            d: i64,
            #[relyt(with = "enc", json)]
            e: i64,
            #[relyt(sum, table = "x")]
            f: i64,
            #[relyt(rename = "a")]
            g: i64,
            #[relyt(renam = "h", json(pretty))]
            h: i64,
        }
    }));
}

#[test]
fn shape_errors() {
    let cases = [
        quote::quote!(
            struct Tuple(i64, String);
        ),
        quote::quote!(
            struct Unit;
        ),
        quote::quote!(
            enum E {
                A,
            }
        ),
        quote::quote!(union U { a: u32 }),
        quote::quote!(
            struct Empty {}
        ),
        quote::quote!(
            struct AllSkipped {
                #[relyt(skip)]
                a: i64,
            }
        ),
    ];
    let all: String = cases.into_iter().map(errors).collect();
    insta::assert_snapshot!(all);
}
