//! [`Encode`] for the standard types and the optional crates (uuid, serde_json, rust_decimal).

use std::borrow::Cow;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use super::{ArrayElement, Encode, FieldEncoder, write_array_text};
use crate::error::EncodeError;
use crate::record::SqlType;

// ---------------------------------------------------------------------------------------------
// Integers

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            const SQL_TYPE: SqlType = SqlType::INTEGER;
            #[inline]
            fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
                out.write_plain(itoa::Buffer::new().format(*self).as_bytes());
                Ok(())
            }
        }
        impl ArrayElement for $t {
            #[inline]
            fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
                Ok(())
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, u16, u32);

// `u8` encodes as a number but is no array element: `Vec<u8>` is bytea.
impl Encode for u8 {
    const SQL_TYPE: SqlType = SqlType::INTEGER;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_plain(itoa::Buffer::new().format(*self).as_bytes());
        Ok(())
    }
}

/// Checks that an unsigned 64-bit value fits PostgreSQL's `bigint`.
#[inline]
fn u64_as_bigint(v: u64) -> Result<i64, EncodeError> {
    i64::try_from(v)
        .map_err(|_| EncodeError::out_of_range(v, "bigint (at most 9223372036854775807)"))
}

impl Encode for u64 {
    const SQL_TYPE: SqlType = SqlType::INTEGER;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        u64_as_bigint(*self)?.encode(out)
    }
}
impl ArrayElement for u64 {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        u64_as_bigint(*self)?.encode_element(out)
    }
}
impl Encode for usize {
    const SQL_TYPE: SqlType = SqlType::INTEGER;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        (*self as u64).encode(out)
    }
}
impl Encode for isize {
    const SQL_TYPE: SqlType = SqlType::INTEGER;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        (*self as i64).encode(out)
    }
}

/// `i128`/`u128` load into `numeric` (they exceed `bigint`).
macro_rules! wide {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            const SQL_TYPE: SqlType = SqlType::NUMERIC;
            #[inline]
            fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
                out.write_plain(itoa::Buffer::new().format(*self).as_bytes());
                Ok(())
            }
        }
        impl ArrayElement for $t {
            fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
                Ok(())
            }
        }
    )*};
}
wide!(i128, u128);

// ---------------------------------------------------------------------------------------------
// Floats: the shortest text that reads back to the same value; NaN and the infinities spelt as
// PostgreSQL reads them.

macro_rules! float {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            const SQL_TYPE: SqlType = SqlType::FLOAT;
            #[inline]
            fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
                let mut buf = ryu::Buffer::new();
                out.write_plain(float_text(*self, &mut buf).as_bytes());
                Ok(())
            }
        }
        impl ArrayElement for $t {
            fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                let mut buf = ryu::Buffer::new();
                out.extend_from_slice(float_text(*self, &mut buf).as_bytes());
                Ok(())
            }
        }
    )*};
}
float!(f32, f64);

#[inline]
fn float_text<F: ryu::Float + FloatKind>(v: F, buf: &mut ryu::Buffer) -> &str {
    if v.is_nan() {
        "NaN"
    } else if v.is_infinite() {
        if v.is_negative() {
            "-Infinity"
        } else {
            "Infinity"
        }
    } else {
        buf.format_finite(v)
    }
}

/// What `float_text` needs to know of a float.
trait FloatKind: Copy {
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
    fn is_negative(self) -> bool;
}
macro_rules! float_kind {
    ($($t:ty),*) => {$(
        impl FloatKind for $t {
            #[inline] fn is_nan(self) -> bool { <$t>::is_nan(self) }
            #[inline] fn is_infinite(self) -> bool { <$t>::is_infinite(self) }
            #[inline] fn is_negative(self) -> bool { self.is_sign_negative() }
        }
    )*};
}
float_kind!(f32, f64);

// ---------------------------------------------------------------------------------------------
// bool

impl Encode for bool {
    const SQL_TYPE: SqlType = SqlType::BOOL;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_plain(if *self { b"t" } else { b"f" });
        Ok(())
    }
}
impl ArrayElement for bool {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(if *self { b't' } else { b'f' });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Text

impl Encode for str {
    const SQL_TYPE: SqlType = SqlType::ANY;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_text(self)
    }
}
impl ArrayElement for str {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_array_text(out, self.as_bytes())
    }
}
impl Encode for String {
    const SQL_TYPE: SqlType = SqlType::ANY;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_text(self)
    }
}
impl ArrayElement for String {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_array_text(out, self.as_bytes())
    }
}
impl Encode for char {
    const SQL_TYPE: SqlType = SqlType::ANY;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_text(self.encode_utf8(&mut [0; 4]))
    }
}
impl ArrayElement for char {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_array_text(out, self.encode_utf8(&mut [0; 4]).as_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// NULL and wrappers

impl<T: Encode> Encode for Option<T> {
    const SQL_TYPE: SqlType = T::SQL_TYPE;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        match self {
            Some(v) => v.encode(out),
            None => out.write_null(),
        }
    }
}
impl<T: ArrayElement> ArrayElement for Option<T> {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Some(v) => v.encode_element(out),
            None => {
                out.extend_from_slice(b"NULL");
                Ok(())
            }
        }
    }
}

macro_rules! deref_wrapper {
    ($($w:ident),*) => {$(
        impl<T: Encode + ?Sized> Encode for $w<T> {
            const SQL_TYPE: SqlType = T::SQL_TYPE;
            #[inline]
            fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
                (**self).encode(out)
            }
        }
        impl<T: ArrayElement + ?Sized> ArrayElement for $w<T> {
            fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                (**self).encode_element(out)
            }
        }
    )*};
}
deref_wrapper!(Box, Arc, Rc);

impl<T: Encode + ?Sized> Encode for &T {
    const SQL_TYPE: SqlType = T::SQL_TYPE;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        (**self).encode(out)
    }
}
impl<T: ArrayElement + ?Sized> ArrayElement for &T {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        (**self).encode_element(out)
    }
}
impl<T: Encode + ToOwned + ?Sized> Encode for Cow<'_, T> {
    const SQL_TYPE: SqlType = T::SQL_TYPE;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        self.as_ref().encode(out)
    }
}
impl<T: ArrayElement + ToOwned + ?Sized> ArrayElement for Cow<'_, T> {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.as_ref().encode_element(out)
    }
}

// ---------------------------------------------------------------------------------------------
// bytea: hex format, `\x0123...`

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_bytea_hex(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(2 + 2 * bytes.len());
    out.extend_from_slice(b"\\x");
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}

impl Encode for [u8] {
    const SQL_TYPE: SqlType = SqlType::BYTEA;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        // `\x...` never needs CSV quoting (it does not start with `\.`).
        let buf = out.plain_buf();
        buf.reserve(2 + 2 * self.len());
        buf.extend_from_slice(b"\\x");
        for &b in self {
            buf.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        }
        Ok(())
    }
}
impl ArrayElement for [u8] {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // In an array literal the backslash must itself be escaped: "\\x0102".
        out.push(b'"');
        out.push(b'\\');
        write_bytea_hex(self, out);
        out.push(b'"');
        Ok(())
    }
}
impl Encode for Vec<u8> {
    const SQL_TYPE: SqlType = SqlType::BYTEA;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        self.as_slice().encode(out)
    }
}
impl ArrayElement for Vec<u8> {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.as_slice().encode_element(out)
    }
}
impl<const N: usize> Encode for [u8; N] {
    const SQL_TYPE: SqlType = SqlType::BYTEA;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        self.as_slice().encode(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Arrays: `{a,b,NULL}`, nested for more dimensions (PostgreSQL wants them rectangular).

fn write_array_literal<T: ArrayElement>(items: &[T], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(b'{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item.encode_element(out)?;
    }
    out.push(b'}');
    Ok(())
}

/// The [`SqlType`] of an array of `T`.
struct ArrayOf<T: ?Sized>(std::marker::PhantomData<T>);
impl<T: Encode + ?Sized> ArrayOf<T> {
    const SQL_TYPE: SqlType = SqlType::array(&T::SQL_TYPE);
}

impl<T: ArrayElement> Encode for [T] {
    const SQL_TYPE: SqlType = ArrayOf::<T>::SQL_TYPE;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_built(|buf| write_array_literal(self, buf))
    }
}
impl<T: ArrayElement> ArrayElement for [T] {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_array_literal(self, out)
    }
}
impl<T: ArrayElement> Encode for Vec<T> {
    const SQL_TYPE: SqlType = ArrayOf::<T>::SQL_TYPE;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        self.as_slice().encode(out)
    }
}
impl<T: ArrayElement> ArrayElement for Vec<T> {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_array_literal(self, out)
    }
}
impl<T: ArrayElement, const N: usize> Encode for [T; N] {
    const SQL_TYPE: SqlType = ArrayOf::<T>::SQL_TYPE;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        self.as_slice().encode(out)
    }
}
impl<T: ArrayElement, const N: usize> ArrayElement for [T; N] {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_array_literal(self, out)
    }
}

// ---------------------------------------------------------------------------------------------
// inet

fn write_ip(ip: &IpAddr, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{ip}");
}

impl Encode for IpAddr {
    const SQL_TYPE: SqlType = SqlType::INET;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_built(|buf| {
            write_ip(self, buf);
            Ok(())
        })
    }
}
impl ArrayElement for IpAddr {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_ip(self, out);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Float vectors

/// A float vector, written as `[1,2.5,3]`: the text form of pgvector's `vector`/`halfvec` and
/// Relyt's `vecf16`.
///
/// NaN and the infinities are refused (those column types do not store them).
///
/// ```
/// use relyt_sdk::{RelytRecord, Vector};
///
/// #[derive(RelytRecord)]
/// struct Doc { id: i64, embedding: Vector }
///
/// let doc = Doc { id: 1, embedding: Vector(vec![0.5, -1.0, 3.25]) };
/// assert_eq!(relyt_sdk::encode_to_string(&doc).unwrap(), "1,\"[0.5,-1.0,3.25]\"\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vector(pub Vec<f32>);

impl From<Vec<f32>> for Vector {
    fn from(v: Vec<f32>) -> Self {
        Self(v)
    }
}

impl Encode for Vector {
    const SQL_TYPE: SqlType = SqlType::VECTOR;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_built(|buf| {
            buf.push(b'[');
            let mut fmt = ryu::Buffer::new();
            for (i, v) in self.0.iter().enumerate() {
                if !v.is_finite() {
                    return Err(EncodeError::out_of_range(v, "vector (finite values only)"));
                }
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(fmt.format_finite(*v).as_bytes());
            }
            buf.push(b']');
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// uuid

#[cfg(feature = "uuid")]
impl Encode for uuid::Uuid {
    const SQL_TYPE: SqlType = SqlType::UUID;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        out.write_plain(self.hyphenated().encode_lower(&mut buf).as_bytes());
        Ok(())
    }
}
#[cfg(feature = "uuid")]
impl ArrayElement for uuid::Uuid {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        out.extend_from_slice(self.hyphenated().encode_lower(&mut buf).as_bytes());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// rust_decimal

#[cfg(feature = "decimal")]
impl Encode for rust_decimal::Decimal {
    const SQL_TYPE: SqlType = SqlType::NUMERIC;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_display(self)
    }
}
#[cfg(feature = "decimal")]
impl ArrayElement for rust_decimal::Decimal {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use std::io::Write as _;
        let _ = write!(out, "{self}");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Serializes `value` as JSON into one CSV field.
#[cfg(feature = "json")]
pub(crate) fn encode_json<V: serde::Serialize + ?Sized>(
    value: &V,
    out: &mut FieldEncoder<'_>,
) -> Result<(), EncodeError> {
    out.write_built(|buf| {
        serde_json::to_writer(&mut *buf, value)
            .map_err(|e| EncodeError::new(crate::error::EncodeErrorKind::Json(e.to_string())))
    })
}

#[cfg(feature = "json")]
impl Encode for serde_json::Value {
    const SQL_TYPE: SqlType = SqlType::JSON;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        encode_json(self, out)
    }
}
#[cfg(feature = "json")]
impl ArrayElement for serde_json::Value {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let text = serde_json::to_vec(self)
            .map_err(|e| EncodeError::new(crate::error::EncodeErrorKind::Json(e.to_string())))?;
        write_array_text(out, &text)
    }
}

/// Wraps any `serde::Serialize` value so that it loads as JSON, the way `#[relyt(json)]` does for
/// a field.
///
/// ```
/// use relyt_sdk::{Json, RelytRecord};
///
/// #[derive(serde::Serialize)]
/// struct Meta { tags: Vec<&'static str> }
///
/// #[derive(RelytRecord)]
/// struct Row { id: i32, meta: Json<Meta> }
///
/// let row = Row { id: 1, meta: Json(Meta { tags: vec!["a"] }) };
/// assert_eq!(relyt_sdk::encode_to_string(&row).unwrap(), "1,\"{\"\"tags\"\":[\"\"a\"\"]}\"\n");
/// ```
#[cfg(feature = "json")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

#[cfg(feature = "json")]
impl<T: serde::Serialize> Encode for Json<T> {
    const SQL_TYPE: SqlType = SqlType::JSON;
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        encode_json(&self.0, out)
    }
}
