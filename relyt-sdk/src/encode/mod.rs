//! Encoding records into PostgreSQL CSV, the format every import method reads.
//!
//! The format is `COPY ... (FORMAT csv)` with the defaults: `,` between fields, `"` to quote, a
//! doubled `"` inside quotes, no header, one `\n` after each record. NULL is an unquoted empty field
//! and the empty string is `""`, so the two never mix. A field is quoted only when it must be (it is
//! empty, holds `,`, `"`, CR or LF, or starts with `\.`, which could read as the end-of-data marker).
//!
//! Each type writes itself through [`Encode`]; arrays build PostgreSQL's array literal (elements
//! quoted and escaped with `\` as the array parser wants), which is then CSV-quoted as a whole.
//! Encoding never allocates per field: numbers are formatted on the stack, text is copied once into
//! the output buffer, and arrays and JSON reuse one scratch buffer.

mod types;

#[cfg(feature = "chrono")]
mod time;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::EncodeError;
use crate::record::{RelytRecord, SqlType};

#[cfg(feature = "json")]
pub use types::Json;
pub use types::Vector;

/// A Rust value that can be written as one CSV field.
///
/// Implemented for the integer and float types, `bool`, text (`str`, `String`, `Cow<str>`, `char`),
/// `Option<T>` (NULL), `Vec<u8>`/`[u8]` (bytea), `Vec<T>`/`[T]`/`[T; N]` of array elements
/// (PostgreSQL arrays), `IpAddr`, [`Vector`], and behind features chrono's date and time types,
/// `uuid::Uuid`, `serde_json::Value` and `rust_decimal::Decimal`. For another type, implement this
/// trait, use `#[relyt(json)]`, or write a function for `#[relyt(with = "...")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be loaded as a column value",
    label = "this field's type has no relyt_sdk::Encode implementation",
    note = "supported: integers, floats, bool, String/&str, Option<T>, Vec<u8> (bytea), Vec<T> (arrays), chrono, uuid, rust_decimal, serde_json::Value, IpAddr",
    note = "for other types use #[relyt(json)], #[relyt(with = \"path::to::fn\")], or implement relyt_sdk::Encode"
)]
pub trait Encode {
    /// The database types this value's text form loads into (checked against the catalog).
    const SQL_TYPE: SqlType;

    /// Writes the value as one CSV field.
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError>;
}

/// A value that can be an element of a PostgreSQL array (`Vec<T>`, `[T]`).
///
/// `u8` is deliberately not one: `Vec<u8>` is `bytea`.
pub trait ArrayElement: Encode {
    /// Writes the value as an element of an array literal: numbers bare, text in double quotes
    /// with `\` escapes, NULL as `NULL`, nested arrays in braces.
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
}

/// Where one field's bytes go: the output buffer plus a reusable scratch buffer.
///
/// Custom encoders (`#[relyt(with = "...")]`) receive it and call one of its `write_*` methods
/// exactly once.
pub struct FieldEncoder<'a> {
    buf: &'a mut BytesMut,
    scratch: &'a mut Vec<u8>,
}

/// Bytes that force a CSV field into quotes, plus NUL, which no PostgreSQL text may hold.
const CSV_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[0] = true;
    t
};

#[inline]
fn has_csv_special(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| CSV_SPECIAL[b as usize])
}

impl<'a> FieldEncoder<'a> {
    /// Writes SQL NULL (an unquoted empty field).
    #[inline]
    pub fn write_null(&mut self) -> Result<(), EncodeError> {
        Ok(())
    }

    /// Writes text, quoting it when needed. Text with a NUL byte is an error.
    #[inline]
    pub fn write_text(&mut self, text: &str) -> Result<(), EncodeError> {
        self.write_text_bytes(text.as_bytes())
    }

    /// Writes any [`Encode`] value.
    #[inline]
    pub fn write<V: Encode + ?Sized>(&mut self, value: &V) -> Result<(), EncodeError> {
        value.encode(self)
    }

    /// Writes a value through its `Display` text, quoting it when needed.
    pub fn write_display(&mut self, value: impl std::fmt::Display) -> Result<(), EncodeError> {
        use std::io::Write as _;
        let mut scratch = std::mem::take(self.scratch);
        scratch.clear();
        let res = write!(scratch, "{value}")
            .map_err(|e| EncodeError::custom(format!("Display failed: {e}")))
            .and_then(|()| self.write_text_bytes(&scratch));
        *self.scratch = scratch;
        res
    }

    /// Writes bytes that hold UTF-8 text; quotes and checks them as [`write_text`](Self::write_text).
    #[inline]
    pub(crate) fn write_text_bytes(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        if has_csv_special(bytes) {
            if bytes.contains(&0) {
                return Err(EncodeError::nul_byte());
            }
            self.write_quoted(bytes);
        } else if bytes.is_empty() || bytes.starts_with(b"\\.") {
            self.write_quoted(bytes);
        } else {
            self.buf.put_slice(bytes);
        }
        Ok(())
    }

    /// Writes bytes known to need no quoting and to hold no NUL (digits, dates, uuids, ...).
    #[inline]
    pub(crate) fn write_plain(&mut self, bytes: &[u8]) {
        debug_assert!(!has_csv_special(bytes) && !bytes.is_empty());
        self.buf.put_slice(bytes);
    }

    /// The output buffer, for encoders that format straight into it; what they write must need no
    /// quoting.
    #[inline]
    pub(crate) fn plain_buf(&mut self) -> &mut BytesMut {
        self.buf
    }

    fn write_quoted(&mut self, bytes: &[u8]) {
        self.buf.reserve(bytes.len() + 2);
        self.buf.put_u8(b'"');
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'"') {
            self.buf.put_slice(&rest[..=pos]);
            self.buf.put_u8(b'"');
            rest = &rest[pos + 1..];
        }
        self.buf.put_slice(rest);
        self.buf.put_u8(b'"');
    }

    /// Builds a text value in the scratch buffer with `build`, then writes it as text.
    pub(crate) fn write_built(
        &mut self,
        build: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mut scratch = std::mem::take(self.scratch);
        scratch.clear();
        let res = build(&mut scratch).and_then(|()| self.write_text_bytes(&scratch));
        *self.scratch = scratch;
        res
    }
}

/// Writes the fields of one row; generated by `#[derive(RelytRecord)]`.
///
/// Fields are separated by `,`; the row's end is written by the caller ([`CsvEncoder`]).
pub struct RowEncoder<'a> {
    field: FieldEncoder<'a>,
    first: bool,
    /// Where each field starts in the buffer, when the caller asked for it.
    offsets: Option<&'a mut Vec<usize>>,
}

impl<'a> RowEncoder<'a> {
    fn new(
        buf: &'a mut BytesMut,
        scratch: &'a mut Vec<u8>,
        offsets: Option<&'a mut Vec<usize>>,
    ) -> Self {
        Self {
            field: FieldEncoder { buf, scratch },
            first: true,
            offsets,
        }
    }

    #[inline]
    fn next_field(&mut self) -> &mut FieldEncoder<'a> {
        if self.first {
            self.first = false;
        } else {
            self.field.buf.put_u8(b',');
        }
        if let Some(offsets) = &mut self.offsets {
            offsets.push(self.field.buf.len());
        }
        &mut self.field
    }

    /// Writes the next field.
    #[inline]
    pub fn field<V: Encode + ?Sized>(
        &mut self,
        column: &'static str,
        value: &V,
    ) -> Result<(), EncodeError> {
        value
            .encode(self.next_field())
            .map_err(|e| e.in_column(column))
    }

    /// Writes the next field as JSON (`#[relyt(json)]`).
    #[cfg(feature = "json")]
    pub fn field_json<V: serde::Serialize + ?Sized>(
        &mut self,
        column: &'static str,
        value: &V,
    ) -> Result<(), EncodeError> {
        types::encode_json(value, self.next_field()).map_err(|e| e.in_column(column))
    }

    /// Writes the next field with a custom encoder (`#[relyt(with = "...")]`).
    #[inline]
    pub fn field_with<V: ?Sized, F>(
        &mut self,
        column: &'static str,
        value: &V,
        encode: F,
    ) -> Result<(), EncodeError>
    where
        F: FnOnce(&V, &mut FieldEncoder<'_>) -> Result<(), EncodeError>,
    {
        encode(value, self.next_field()).map_err(|e| e.in_column(column))
    }
}

/// Encodes records into a CSV buffer, one line each.
///
/// A record that fails to encode is rolled back: nothing of it stays in the buffer, so the buffer
/// always holds whole, valid records.
///
/// ```
/// use relyt_sdk::{CsvEncoder, RelytRecord};
///
/// #[derive(RelytRecord)]
/// struct Row { id: i32, name: Option<String> }
///
/// let mut enc = CsvEncoder::new();
/// enc.encode(&Row { id: 1, name: Some(String::new()) }).unwrap();
/// enc.encode(&Row { id: 2, name: None }).unwrap();
/// assert!(enc.encode(&Row { id: 3, name: Some("a\0b".into()) }).is_err());
/// assert_eq!(enc.rows(), 2);
/// assert_eq!(&enc.take()[..], b"1,\"\"\n2,\n");
/// ```
#[derive(Debug, Default)]
pub struct CsvEncoder {
    buf: BytesMut,
    scratch: Vec<u8>,
    rows: u64,
}

impl CsvEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty encoder whose buffer starts with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Appends one record as a CSV line. On error nothing is appended.
    #[inline]
    pub fn encode<T: RelytRecord + ?Sized>(&mut self, record: &T) -> Result<(), EncodeError> {
        self.encode_inner(record, None)
    }

    /// Like [`encode`](Self::encode), and also records in `offsets` where each field of the
    /// record starts in the buffer (`offsets` is cleared first).
    pub(crate) fn encode_with_offsets<T: RelytRecord + ?Sized>(
        &mut self,
        record: &T,
        offsets: &mut Vec<usize>,
    ) -> Result<(), EncodeError> {
        offsets.clear();
        self.encode_inner(record, Some(offsets))
    }

    /// Appends whole, already encoded lines holding `rows` records.
    #[inline]
    pub(crate) fn push_encoded(&mut self, lines: &[u8], rows: u64) {
        self.buf.put_slice(lines);
        self.rows += rows;
    }

    /// Empties the buffer, keeping its memory.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.rows = 0;
    }

    #[inline]
    fn encode_inner<T: RelytRecord + ?Sized>(
        &mut self,
        record: &T,
        offsets: Option<&mut Vec<usize>>,
    ) -> Result<(), EncodeError> {
        let start = self.buf.len();
        let mut row = RowEncoder::new(&mut self.buf, &mut self.scratch, offsets);
        match record.encode_row(&mut row) {
            Ok(()) => {
                self.buf.put_u8(b'\n');
                self.rows += 1;
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(e)
            }
        }
    }

    /// The number of records in the buffer.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The number of bytes in the buffer.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the encoded bytes out without copying and starts a new, empty buffer (the row count
    /// is reset too).
    pub fn take(&mut self) -> Bytes {
        self.rows = 0;
        self.buf.split().freeze()
    }

    /// Reserves room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }
}

/// Encodes one record as its CSV line (with the trailing newline) — handy in tests and docs.
pub fn encode_to_string<T: RelytRecord + ?Sized>(record: &T) -> Result<String, EncodeError> {
    let mut enc = CsvEncoder::new();
    enc.encode(record)?;
    // Every encoder writes UTF-8: text is copied from `str`, everything else is ASCII, and bytea
    // is written in hex.
    String::from_utf8(enc.take().to_vec())
        .map_err(|_| EncodeError::custom("encoder produced invalid UTF-8"))
}

/// Writes `text` as a quoted array element: `"` ... `"` with `"` and `\` escaped by `\`.
pub(crate) fn write_array_text(out: &mut Vec<u8>, text: &[u8]) -> Result<(), EncodeError> {
    if text.contains(&0) {
        return Err(EncodeError::nul_byte());
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    for &b in text {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Column;

    /// A one-column record around any value, for checking a type's text.
    struct One<V>(V);
    impl<V: Encode> RelytRecord for One<V> {
        const COLUMNS: &'static [Column] = &[Column::new("v", false, V::SQL_TYPE)];
        fn encode_row(&self, row: &mut RowEncoder<'_>) -> Result<(), EncodeError> {
            row.field("v", &self.0)
        }
    }

    fn csv<V: Encode>(v: V) -> String {
        let line = encode_to_string(&One(v)).expect("encodes");
        line.strip_suffix('\n').expect("newline").to_owned()
    }

    #[test]
    fn numbers() {
        assert_eq!(csv(-42i64), "-42");
        assert_eq!(csv(u8::MAX), "255");
        assert_eq!(csv(i64::MAX as u64), "9223372036854775807");
        let err = encode_to_string(&One(u64::MAX)).expect_err("too big");
        assert_eq!(err.column(), Some("v"));
        assert!(matches!(
            err.kind(),
            crate::EncodeErrorKind::OutOfRange { .. }
        ));
        assert_eq!(csv(0.1f64), "0.1");
        assert_eq!(csv(0.1f32), "0.1");
        assert_eq!(csv(1e300f64), "1e300");
        assert_eq!(csv(-0.0f64), "-0.0");
        assert_eq!(csv(f64::NAN), "NaN");
        assert_eq!(csv(f64::INFINITY), "Infinity");
        assert_eq!(csv(f32::NEG_INFINITY), "-Infinity");
        assert_eq!(csv(i128::MIN), "-170141183460469231731687303715884105728");
        assert_eq!(csv(true), "t");
    }

    #[test]
    fn text_quoting() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv(""), "\"\"");
        assert_eq!(csv(None::<&str>), "");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("line\nbreak\r"), "\"line\nbreak\r\"");
        assert_eq!(csv("\\."), "\"\\.\"");
        assert_eq!(csv("back\\slash"), "back\\slash");
        assert_eq!(csv("ünï ☃"), "ünï ☃");
        assert_eq!(csv('x'), "x");
        assert!(encode_to_string(&One("a\0")).is_err());
        assert!(encode_to_string(&One('\0')).is_err());
    }

    #[test]
    fn bytea_and_arrays() {
        assert_eq!(csv(vec![0u8, 0xab, 0xff]), "\\x00abff");
        assert_eq!(csv(Vec::<u8>::new()), "\\x");
        assert_eq!(csv(vec![1i32, -2]), "\"{1,-2}\"");
        assert_eq!(csv(Vec::<i32>::new()), "{}");
        assert_eq!(
            csv(vec![
                Some("a\"b"),
                None,
                Some(""),
                Some("NULL"),
                Some("c\\d")
            ]),
            r#""{""a\""b"",NULL,"""",""NULL"",""c\\d""}""#
        );
        assert_eq!(csv(vec![vec![1i64, 2], vec![3, 4]]), "\"{{1,2},{3,4}}\"");
        assert_eq!(csv(vec![vec![1u8, 2]]), "\"{\"\"\\\\x0102\"\"}\"");
        assert_eq!(csv([f64::NAN, 1.5]), "\"{NaN,1.5}\"");
        assert!(encode_to_string(&One(vec!["\0"])).is_err());
    }

    #[test]
    fn vectors_refuse_non_finite() {
        assert_eq!(csv(Vector(vec![])), "[]");
        assert!(encode_to_string(&One(Vector(vec![f32::NAN]))).is_err());
    }

    #[cfg(feature = "chrono")]
    #[test]
    fn dates_and_times() {
        use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone};
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
        assert_eq!(csv(d), "2024-02-29");
        assert_eq!(
            csv(NaiveDate::from_ymd_opt(-43, 3, 15).expect("date")),
            "0044-03-15 BC"
        );
        assert_eq!(
            csv(NaiveDate::from_ymd_opt(12345, 1, 2).expect("date")),
            "12345-01-02"
        );
        assert!(encode_to_string(&One(NaiveDate::from_ymd_opt(-5000, 1, 1).expect("d"))).is_err());
        let t = NaiveTime::from_hms_micro_opt(13, 5, 7, 250_000).expect("time");
        assert_eq!(csv(t), "13:05:07.25");
        let t = NaiveTime::from_hms_nano_opt(0, 0, 0, 1).expect("time");
        assert_eq!(csv(t), "00:00:00.000000001");
        let leap = NaiveTime::from_hms_milli_opt(23, 59, 59, 1_500).expect("leap");
        assert_eq!(csv(leap), "23:59:60.5");
        assert_eq!(csv(d.and_time(t)), "2024-02-29 00:00:00.000000001");
        let east = FixedOffset::east_opt(5 * 3600 + 1800).expect("offset");
        let dt = east
            .with_ymd_and_hms(2024, 1, 1, 3, 0, 0)
            .single()
            .expect("dt");
        assert_eq!(csv(dt), "2023-12-31 21:30:00+00");
        let bc = NaiveDate::from_ymd_opt(0, 1, 1)
            .expect("1 BC")
            .and_time(NaiveTime::MIN);
        assert_eq!(csv(bc.and_utc()), "0001-01-01 00:00:00+00 BC");
    }

    #[test]
    fn failed_record_is_rolled_back() {
        let mut enc = CsvEncoder::new();
        enc.encode(&One("ok")).expect("encodes");
        assert!(enc.encode(&One("bad\0")).is_err());
        assert_eq!(enc.as_bytes(), b"ok\n");
        assert_eq!(enc.rows(), 1);
    }
}
