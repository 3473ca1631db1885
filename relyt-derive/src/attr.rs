//! Parsing of `#[relyt(...)]` attributes on the struct and on its fields.
//!
//! Every problem is recorded in the [`Ctxt`] and parsing goes on with the next key, so one build
//! reports every bad attribute. Attribute values are read in a form that accepts anything
//! (word, `= expr` or `(...)`) and only then checked, so an error in one key never hides the
//! keys after it.

use proc_macro2::{Group, Span};
use syn::ext::IdentExt as _;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned as _;
use syn::{Attribute, Expr, ExprLit, ExprPath, Lit, LitStr, Path, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;
use crate::symbol::{self, Symbol};

/// One attribute that may be given at most once.
///
/// Remembers the span of the key (`rename` in `rename = "x"`) so later checks can point at it.
pub(crate) struct Attr<T> {
    name: Symbol,
    value: Option<(Span, T)>,
}

impl<T> Attr<T> {
    fn none(name: Symbol) -> Self {
        Self { name, value: None }
    }

    /// Stores the value, or records a "duplicate" error at the second key.
    fn set(&mut self, cx: &mut Ctxt, key: Span, value: T) {
        if self.value.is_some() {
            cx.error(key, format_args!("duplicate `{}` attribute", self.name));
        } else {
            self.value = Some((key, value));
        }
    }

    /// The value, if the attribute was given.
    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, value)| value)
    }

    /// The span of the attribute's key, if the attribute was given.
    pub(crate) fn key_span(&self) -> Option<Span> {
        self.value.as_ref().map(|(span, _)| *span)
    }

    /// Whether the attribute was given.
    pub(crate) fn is_set(&self) -> bool {
        self.value.is_some()
    }
}

/// A flag attribute such as `skip`: present or not, never with a value.
pub(crate) type Flag = Attr<()>;

/// What follows the key of one nested meta item.
enum MetaValue {
    /// `key`
    Word,
    /// `key = <expr>`
    Value(Expr),
    /// `key(...)`, `key[...]` or `key{...}`
    List(Group),
}

/// Reads (and so consumes) whatever follows the key, so parsing can continue after an error.
fn read_value(meta: &ParseNestedMeta<'_>) -> syn::Result<MetaValue> {
    let input = meta.input;
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(MetaValue::Value(input.parse()?))
    } else if input.peek(syn::token::Paren)
        || input.peek(syn::token::Bracket)
        || input.peek(syn::token::Brace)
    {
        Ok(MetaValue::List(input.parse()?))
    } else {
        Ok(MetaValue::Word)
    }
}

/// Reads a `key = "string"` value; records an error and returns `None` for any other form.
fn string_value(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    name: Symbol,
) -> syn::Result<Option<LitStr>> {
    let expected = format!("expected a string literal: `{name} = \"...\"`");
    match read_value(meta)? {
        MetaValue::Value(expr) => {
            let mut expr = &expr;
            // `$value:expr` fragments from `macro_rules!` arrive wrapped in invisible groups.
            while let Expr::Group(group) = expr {
                expr = &group.expr;
            }
            match expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                }) => return Ok(Some(lit.clone())),
                other => cx.error_spanned_by(other, expected),
            }
        }
        MetaValue::Word => cx.error_spanned_by(&meta.path, expected),
        MetaValue::List(group) => cx.error(group.span(), expected),
    }
    Ok(None)
}

/// Like [`string_value`], and also rejects the empty string.
fn nonempty_string_value(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    name: Symbol,
) -> syn::Result<Option<LitStr>> {
    let lit = string_value(cx, meta, name)?;
    if let Some(lit) = &lit
        && lit.value().is_empty()
    {
        cx.error(lit.span(), format_args!("`{name}` must not be empty"));
        return Ok(None);
    }
    Ok(lit)
}

/// Reads a flag such as `skip`; records an error and returns `false` if a value was given.
fn flag_value(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>, name: Symbol) -> syn::Result<bool> {
    let msg = format!("`{name}` takes no value: write `#[relyt({name})]`");
    match read_value(meta)? {
        MetaValue::Word => return Ok(true),
        MetaValue::Value(expr) => cx.error_spanned_by(expr, msg),
        MetaValue::List(group) => cx.error(group.span(), msg),
    }
    Ok(false)
}

/// The key of a nested meta item as written, for error messages (`foo`, `foo::bar`).
fn path_to_string(path: &Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.unraw().to_string())
        .collect();
    let joined = segments.join("::");
    if path.leading_colon.is_some() {
        format!("::{joined}")
    } else {
        joined
    }
}

/// Records an "unknown attribute" error at the key and skips its value.
///
/// `elsewhere` lists the attributes that belong on the other level (field vs. struct), so that a
/// misplaced attribute gets a precise hint instead of a bare "unknown".
fn unknown(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    level: &str,
    expected: &[Symbol],
    elsewhere: (&str, &[Symbol]),
) -> syn::Result<()> {
    let key = path_to_string(&meta.path);
    let (other_level, other_attrs) = elsewhere;
    let msg = if other_attrs.iter().any(|s| meta.path == *s) {
        format!(
            "`{key}` is a {other_level} attribute and cannot be used on a {level}; \
             {level} attributes are: {}",
            symbol::list(expected)
        )
    } else {
        let hint = match symbol::closest(&key, expected) {
            Some(close) => format!(" (did you mean `{close}`?)"),
            None => String::new(),
        };
        format!(
            "unknown {level} attribute `{key}`{hint}; expected one of: {}",
            symbol::list(expected)
        )
    };
    cx.error_spanned_by(&meta.path, msg);
    read_value(meta).map(drop)
}

/// Calls `f` for every nested meta item of every `#[relyt(...)]` in `attrs`.
///
/// A syntax error that `syn` cannot recover from ends only the attribute it occurs in.
fn for_each_relyt_meta(
    cx: &mut Ctxt,
    attrs: &[Attribute],
    mut f: impl FnMut(&mut Ctxt, &ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs {
        if attr.path() != &symbol::RELYT {
            continue;
        }
        let result = attr.parse_nested_meta(|meta| f(cx, &meta));
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
}

/// Struct-level attributes.
pub(crate) struct Container {
    /// `table = "name"`
    pub(crate) table: Attr<LitStr>,
    /// `schema = "name"`
    pub(crate) schema: Attr<LitStr>,
    /// `rename_all = "rule"`
    pub(crate) rename_all: Attr<RenameRule>,
    /// `crate = "path"`
    pub(crate) crate_path: Attr<Path>,
}

impl Container {
    /// Parses the `#[relyt(...)]` attributes of the struct.
    pub(crate) fn from_ast(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = Self {
            table: Attr::none(symbol::TABLE),
            schema: Attr::none(symbol::SCHEMA),
            rename_all: Attr::none(symbol::RENAME_ALL),
            crate_path: Attr::none(symbol::CRATE),
        };
        for_each_relyt_meta(cx, attrs, |cx, meta| out.parse_meta(cx, meta));
        out
    }

    fn parse_meta(&mut self, cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta.path.span();
        if meta.path == symbol::TABLE {
            if let Some(lit) = nonempty_string_value(cx, meta, symbol::TABLE)? {
                self.table.set(cx, key, lit);
            }
        } else if meta.path == symbol::SCHEMA {
            if let Some(lit) = nonempty_string_value(cx, meta, symbol::SCHEMA)? {
                self.schema.set(cx, key, lit);
            }
        } else if meta.path == symbol::RENAME_ALL {
            if let Some(lit) = string_value(cx, meta, symbol::RENAME_ALL)? {
                match RenameRule::from_name(&lit.value()) {
                    Some(rule) => self.rename_all.set(cx, key, rule),
                    None => {
                        let value = lit.value();
                        let hint = match RenameRule::suggest(&value) {
                            Some(rule) => format!(" (did you mean {rule:?}?)"),
                            None => String::new(),
                        };
                        cx.error(
                            lit.span(),
                            format_args!(
                                "unknown `rename_all` rule {value:?}{hint}; expected one of: {}",
                                RenameRule::expected()
                            ),
                        );
                    }
                }
            }
        } else if meta.path == symbol::CRATE {
            if let Some(lit) = string_value(cx, meta, symbol::CRATE)? {
                match lit.parse::<Path>() {
                    Ok(path) => self.crate_path.set(cx, key, path),
                    Err(error) => cx.error(
                        lit.span(),
                        format_args!(
                            "{:?} is not a path ({error}); `crate` expects the path of the \
                             relyt_sdk crate, such as `crate = \"::relyt_sdk\"`",
                            lit.value()
                        ),
                    ),
                }
            }
        } else {
            unknown(
                cx,
                meta,
                "struct",
                symbol::CONTAINER_ATTRS,
                ("field", symbol::FIELD_ATTRS),
            )?;
        }
        Ok(())
    }
}

/// What a column is for, beyond carrying a value.
///
/// A field has exactly one role. Today that is a plain column or a primary-key column; the
/// aggregate markers planned in the ROADMAP (`sum`, `count`, `min`, `max`, `mean`) become further
/// variants here and entries in [`ROLE_ATTRS`], and conflicting roles are already reported by
/// [`Field::set_role`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum FieldRole {
    /// An ordinary column.
    Plain,
    /// `#[relyt(key)]`: a primary-key column.
    Key,
}

/// The attributes that assign a role, each with the role it assigns.
const ROLE_ATTRS: &[(Symbol, FieldRole)] = &[(symbol::KEY, FieldRole::Key)];

impl FieldRole {
    /// The attribute that assigns this role, for messages (`""` for [`FieldRole::Plain`],
    /// which no attribute assigns).
    pub(crate) fn name(self) -> &'static str {
        ROLE_ATTRS
            .iter()
            .find(|(_, role)| *role == self)
            .map_or("", |(symbol, _)| symbol.as_str())
    }
}

/// Field-level attributes.
pub(crate) struct Field {
    /// `rename = "column"`
    pub(crate) rename: Attr<LitStr>,
    /// `skip`
    pub(crate) skip: Flag,
    /// `key` (and, later, the aggregate markers); unset means [`FieldRole::Plain`]. Its own name
    /// is only a placeholder: messages name the role's attribute (see [`Field::set_role`]).
    pub(crate) role: Attr<FieldRole>,
    /// `json`
    pub(crate) json: Flag,
    /// `with = "path::to::encode"`
    pub(crate) with: Attr<ExprPath>,
}

impl Field {
    /// Parses the `#[relyt(...)]` attributes of one field.
    pub(crate) fn from_ast(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = Self {
            rename: Attr::none(symbol::RENAME),
            skip: Attr::none(symbol::SKIP),
            role: Attr::none(symbol::KEY),
            json: Attr::none(symbol::JSON),
            with: Attr::none(symbol::WITH),
        };
        for_each_relyt_meta(cx, attrs, |cx, meta| out.parse_meta(cx, meta));
        out
    }

    /// The role of the field.
    pub(crate) fn role(&self) -> FieldRole {
        self.role.get().copied().unwrap_or(FieldRole::Plain)
    }

    fn parse_meta(&mut self, cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta.path.span();
        if meta.path == symbol::RENAME {
            if let Some(lit) = nonempty_string_value(cx, meta, symbol::RENAME)? {
                self.rename.set(cx, key, lit);
            }
        } else if meta.path == symbol::SKIP {
            if flag_value(cx, meta, symbol::SKIP)? {
                self.skip.set(cx, key, ());
            }
        } else if meta.path == symbol::JSON {
            if flag_value(cx, meta, symbol::JSON)? {
                self.json.set(cx, key, ());
            }
        } else if meta.path == symbol::WITH {
            if let Some(lit) = string_value(cx, meta, symbol::WITH)? {
                match lit.parse::<ExprPath>() {
                    Ok(path) => self.with.set(cx, key, path),
                    Err(error) => cx.error(
                        lit.span(),
                        format_args!(
                            "{:?} is not a path ({error}); `with` expects the path of an \
                             encoding function, such as `with = \"my_mod::encode\"`",
                            lit.value()
                        ),
                    ),
                }
            }
        } else if let Some((name, role)) = ROLE_ATTRS.iter().find(|(s, _)| meta.path == *s) {
            if flag_value(cx, meta, *name)? {
                self.set_role(cx, key, *role);
            }
        } else {
            unknown(
                cx,
                meta,
                "field",
                symbol::FIELD_ATTRS,
                ("struct", symbol::CONTAINER_ATTRS),
            )?;
        }
        Ok(())
    }

    /// Assigns a role; a second role is either a duplicate or a conflict.
    fn set_role(&mut self, cx: &mut Ctxt, key: Span, role: FieldRole) {
        match self.role.get().copied() {
            None => self.role.set(cx, key, role),
            Some(previous) if previous == role => {
                cx.error(key, format_args!("duplicate `{}` attribute", role.name()));
            }
            Some(previous) => cx.error(
                key,
                format_args!(
                    "`{}` conflicts with `{}`: a field has at most one role",
                    role.name(),
                    previous.name()
                ),
            ),
        }
    }
}
