//! Collects the errors found while reading the input, so they are all reported at once.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Error collector threaded through attribute parsing, AST building and checks.
///
/// Unlike a `Result`, recording an error does not stop the derive: the remaining attributes and
/// fields are still read, and [`Ctxt::check`] turns everything found into one `syn::Error` that
/// expands to one `compile_error!` per problem, each at the span of the offending token.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// An empty context.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records an error at `span`.
    pub(crate) fn error(&mut self, span: Span, msg: impl Display) {
        self.errors.push(syn::Error::new(span, msg));
    }

    /// Records an error covering all tokens of `tokens`.
    pub(crate) fn error_spanned_by(&mut self, tokens: impl ToTokens, msg: impl Display) {
        self.errors
            .push(syn::Error::new_spanned(tokens.into_token_stream(), msg));
    }

    /// Records an error produced by `syn` (for example by `parse_nested_meta`).
    pub(crate) fn syn_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Consumes the context: `Ok` if nothing was recorded, otherwise all errors combined.
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut combined) => {
                for error in errors {
                    combined.combine(error);
                }
                Err(combined)
            }
        }
    }
}
