//! chrono's date and time types, formatted by hand (no `format!`), in the ISO form PostgreSQL
//! reads: `2024-05-01`, `13:45:07.25`, `2024-05-01 13:45:07.25`, `... +00` for instants.
//!
//! Years before 1 AD are written as PostgreSQL writes them (`0044-03-15 BC`); years PostgreSQL
//! cannot hold (before 4713 BC) are an error for the record. Sub-microsecond digits are written and
//! PostgreSQL rounds them to its microsecond resolution.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};

use super::{ArrayElement, Encode, FieldEncoder};
use crate::error::EncodeError;
use crate::record::SqlType;

/// Room for the longest text we write: `-262143-12-31 23:59:60.999999999+00 BC`.
const MAX_LEN: usize = 48;

/// A small stack buffer to format into.
struct Stack {
    buf: [u8; MAX_LEN],
    len: usize,
}

impl Stack {
    #[inline]
    fn new() -> Self {
        Self {
            buf: [0; MAX_LEN],
            len: 0,
        }
    }
    #[inline]
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }
    #[inline]
    fn push_slice(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }
    #[inline]
    fn two(&mut self, v: u32) {
        self.push(b'0' + (v / 10) as u8);
        self.push(b'0' + (v % 10) as u8);
    }
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// PostgreSQL's earliest year: 4713 BC, which is astronomical year -4712.
const MIN_YEAR: i32 = -4712;

/// Writes `YYYY-MM-DD`; returns whether the date is BC (the caller appends ` BC` at the end).
#[inline]
fn write_date(d: &NaiveDate, out: &mut Stack) -> Result<bool, EncodeError> {
    let year = d.year();
    if year < MIN_YEAR {
        return Err(EncodeError::out_of_range(
            d,
            "PostgreSQL dates (4713 BC or later)",
        ));
    }
    let (y, bc) = if year <= 0 {
        ((1 - year) as u32, true)
    } else {
        (year as u32, false)
    };
    if y < 10_000 {
        out.two(y / 100);
        out.two(y % 100);
    } else {
        out.push_slice(itoa::Buffer::new().format(y).as_bytes());
    }
    out.push(b'-');
    out.two(d.month());
    out.push(b'-');
    out.two(d.day());
    Ok(bc)
}

/// Writes `HH:MM:SS[.fraction]`; a leap second is written as second 60.
#[inline]
fn write_time(t: &NaiveTime, out: &mut Stack) {
    let (mut secs, mut nanos) = (t.second(), t.nanosecond());
    if nanos >= 1_000_000_000 {
        secs += 1;
        nanos -= 1_000_000_000;
    }
    out.two(t.hour());
    out.push(b':');
    out.two(t.minute());
    out.push(b':');
    out.two(secs);
    if nanos > 0 {
        out.push(b'.');
        let mut digits = [0u8; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push_slice(&digits[..len]);
    }
}

#[inline]
fn write_datetime(dt: &NaiveDateTime, utc: bool, out: &mut Stack) -> Result<(), EncodeError> {
    let bc = write_date(&dt.date(), out)?;
    out.push(b' ');
    write_time(&dt.time(), out);
    if utc {
        out.push_slice(b"+00");
    }
    if bc {
        out.push_slice(b" BC");
    }
    Ok(())
}

impl Encode for NaiveDate {
    const SQL_TYPE: SqlType = SqlType::DATE;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        if write_date(self, &mut s)? {
            s.push_slice(b" BC");
        }
        out.write_plain(s.as_bytes());
        Ok(())
    }
}
impl ArrayElement for NaiveDate {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        if write_date(self, &mut s)? {
            s.push_slice(b" BC");
        }
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    }
}

impl Encode for NaiveTime {
    const SQL_TYPE: SqlType = SqlType::TIME;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        write_time(self, &mut s);
        out.write_plain(s.as_bytes());
        Ok(())
    }
}
impl ArrayElement for NaiveTime {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        write_time(self, &mut s);
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Encode for NaiveDateTime {
    const SQL_TYPE: SqlType = SqlType::TIMESTAMP;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        write_datetime(self, false, &mut s)?;
        out.write_plain(s.as_bytes());
        Ok(())
    }
}
impl ArrayElement for NaiveDateTime {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        write_datetime(self, false, &mut s)?;
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    }
}

/// An instant in any time zone is written as its UTC time with `+00`: `timestamptz` stores the
/// instant, not the zone.
impl<Tz: TimeZone> Encode for DateTime<Tz> {
    const SQL_TYPE: SqlType = SqlType::TIMESTAMPTZ;
    #[inline]
    fn encode(&self, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        write_datetime(&self.naive_utc(), true, &mut s)?;
        out.write_plain(s.as_bytes());
        Ok(())
    }
}
impl<Tz: TimeZone> ArrayElement for DateTime<Tz> {
    fn encode_element(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut s = Stack::new();
        write_datetime(&self.naive_utc(), true, &mut s)?;
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    }
}
