//! The encoder, proven against the real database: random values of every supported type are
//! encoded, loaded with `COPY ... FROM STDIN (FORMAT csv)`, read back through sqlx's binary
//! protocol and compared equal.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use relyt_sdk::{CsvEncoder, RelytRecord, Vector};
use rust_decimal::Decimal;
use sqlx::Row as _;
use uuid::Uuid;

use crate::common::TestDb;

/// One column of each supported type (several as `Option` to mix in NULLs).
#[derive(Debug, Clone, RelytRecord)]
struct AllTypes {
    #[relyt(key)]
    id: i64,
    small: i16,
    tiny: i8,
    int: i32,
    uint16: u16,
    uint32: u32,
    uint64: u64,
    wide: i128,
    real: f32,
    double: f64,
    flag: bool,
    text: String,
    opt_text: Option<String>,
    letter: char,
    bytes: Vec<u8>,
    opt_bytes: Option<Vec<u8>>,
    day: NaiveDate,
    clock: NaiveTime,
    local: NaiveDateTime,
    instant: DateTime<Utc>,
    opt_instant: Option<DateTime<Utc>>,
    uuid: Uuid,
    decimal: Decimal,
    json: serde_json::Value,
    ip: IpAddr,
    ints: Vec<i64>,
    texts: Vec<Option<String>>,
    floats: Option<Vec<Option<f64>>>,
    embedding: Vector,
}

const DDL: &str = "CREATE TABLE all_types (
    id bigint PRIMARY KEY, small smallint, tiny smallint, int integer, uint16 integer,
    uint32 bigint, uint64 bigint, wide numeric, real real, double double precision, flag boolean,
    text text, opt_text text, letter text, bytes bytea, opt_bytes bytea, day date, clock time,
    local timestamp, instant timestamptz, opt_instant timestamptz, uuid uuid, decimal numeric,
    json jsonb, ip inet, ints bigint[], texts text[], floats double precision[], embedding text)";

/// Text that stresses the CSV and array quoting: delimiters, quotes, CR/LF, backslashes, the
/// end-of-data marker, the word NULL, whitespace, and any Unicode (but no NUL, which PostgreSQL
/// text cannot hold: that case has its own test).
fn text() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just(','),
        Just('"'),
        Just('\n'),
        Just('\r'),
        Just('\\'),
        Just('.'),
        Just(' '),
        Just('{'),
        Just('}'),
        Just('\t'),
    ];
    let piece = prop_oneof![
        3 => any::<char>().prop_map(|c| if c == '\0' { 'x' } else { c }).prop_map(String::from),
        3 => special.prop_map(String::from),
        1 => Just("\\.".to_owned()),
        1 => Just("NULL".to_owned()),
        1 => Just(String::new()),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn date() -> impl Strategy<Value = NaiveDate> {
    // PostgreSQL dates run from 4713 BC; keep clear of its first year and use both eras and
    // years beyond 9999.
    (-4000i32..=200_000, 1u32..=366)
        .prop_filter_map("valid day", |(y, d)| NaiveDate::from_yo_opt(y, d))
}

fn time() -> impl Strategy<Value = NaiveTime> {
    (0u32..86_400, 0u32..1_000_000).prop_map(|(s, us)| {
        NaiveTime::from_num_seconds_from_midnight_opt(s, us * 1000).expect("in range")
    })
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(|f| Value::from((f * 1000.0).round() / 1000.0)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn float64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(f64::MIN_POSITIVE / 2.0),
    ]
}

fn row() -> impl Strategy<Value = AllTypes> {
    let a = (
        any::<i16>(),
        any::<i8>(),
        any::<i32>(),
        any::<u16>(),
        any::<u32>(),
        0..=i64::MAX as u64,
        any::<i128>(),
        any::<f32>(),
        float64(),
        any::<bool>(),
        text(),
        proptest::option::of(text()),
    );
    let b = (
        any::<char>().prop_map(|c| if c == '\0' { ' ' } else { c }),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        date(),
        time(),
        (date(), time()).prop_map(|(d, t)| d.and_time(t)),
        (date(), time()).prop_map(|(d, t)| d.and_time(t).and_utc()),
        proptest::option::of((date(), time()).prop_map(|(d, t)| d.and_time(t).and_utc())),
        any::<u128>().prop_map(Uuid::from_u128),
        (any::<i64>(), 0u32..=18).prop_map(|(m, s)| Decimal::new(m, s)),
        json(),
        any::<IpAddr>(),
    );
    let c = (
        proptest::collection::vec(any::<i64>(), 0..6),
        proptest::collection::vec(proptest::option::of(text()), 0..6),
        proptest::option::of(proptest::collection::vec(
            proptest::option::of(float64()),
            0..6,
        )),
        proptest::collection::vec(-1.0e30f32..1.0e30, 0..8).prop_map(Vector),
    );
    (a, b, c).prop_map(|(a, b, c)| AllTypes {
        id: 0,
        small: a.0,
        tiny: a.1,
        int: a.2,
        uint16: a.3,
        uint32: a.4,
        uint64: a.5,
        wide: a.6,
        real: a.7,
        double: a.8,
        flag: a.9,
        text: a.10,
        opt_text: a.11,
        letter: b.0,
        bytes: b.1,
        opt_bytes: b.2,
        day: b.3,
        clock: b.4,
        local: b.5,
        instant: b.6,
        opt_instant: b.7,
        uuid: b.8,
        decimal: b.9,
        json: b.10,
        ip: b.11,
        ints: c.0,
        texts: c.1,
        floats: c.2,
        embedding: c.3,
    })
}

fn same_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Reads every row back and compares it with what was encoded.
async fn check_equal(db: &mut TestDb, rows: &[AllTypes]) {
    let got = sqlx::query(
        "SELECT id, small, tiny, int, uint16, uint32, uint64, wide::text, real, double, flag, \
         text, opt_text, letter, bytes, opt_bytes, day, clock, local, instant, opt_instant, uuid, \
         decimal, json, ip, ints, texts, floats, embedding FROM all_types ORDER BY id",
    )
    .fetch_all(&mut db.conn)
    .await
    .expect("read back");
    assert_eq!(got.len(), rows.len(), "row count");
    for (r, want) in got.iter().zip(rows) {
        let id: i64 = r.get(0);
        let ctx = format!("row id {id}: {want:?}");
        assert_eq!(id, want.id, "{ctx}");
        assert_eq!(r.get::<i16, _>(1), want.small, "small {ctx}");
        assert_eq!(r.get::<i16, _>(2), i16::from(want.tiny), "tiny {ctx}");
        assert_eq!(r.get::<i32, _>(3), want.int, "int {ctx}");
        assert_eq!(r.get::<i32, _>(4), i32::from(want.uint16), "uint16 {ctx}");
        assert_eq!(r.get::<i64, _>(5), i64::from(want.uint32), "uint32 {ctx}");
        assert_eq!(r.get::<i64, _>(6) as u64, want.uint64, "uint64 {ctx}");
        assert_eq!(r.get::<String, _>(7), want.wide.to_string(), "wide {ctx}");
        let real: f32 = r.get(8);
        assert!(
            (real.is_nan() && want.real.is_nan()) || real.to_bits() == want.real.to_bits(),
            "real {real} {ctx}"
        );
        assert!(same_f64(r.get(9), want.double), "double {ctx}");
        assert_eq!(r.get::<bool, _>(10), want.flag, "flag {ctx}");
        assert_eq!(r.get::<String, _>(11), want.text, "text {ctx}");
        assert_eq!(
            r.get::<Option<String>, _>(12),
            want.opt_text,
            "opt_text {ctx}"
        );
        assert_eq!(
            r.get::<String, _>(13),
            want.letter.to_string(),
            "letter {ctx}"
        );
        assert_eq!(r.get::<Vec<u8>, _>(14), want.bytes, "bytes {ctx}");
        assert_eq!(
            r.get::<Option<Vec<u8>>, _>(15),
            want.opt_bytes,
            "opt_bytes {ctx}"
        );
        assert_eq!(r.get::<NaiveDate, _>(16), want.day, "day {ctx}");
        assert_eq!(r.get::<NaiveTime, _>(17), want.clock, "clock {ctx}");
        assert_eq!(r.get::<NaiveDateTime, _>(18), want.local, "local {ctx}");
        assert_eq!(r.get::<DateTime<Utc>, _>(19), want.instant, "instant {ctx}");
        assert_eq!(
            r.get::<Option<DateTime<Utc>>, _>(20),
            want.opt_instant,
            "opt_instant {ctx}"
        );
        assert_eq!(r.get::<Uuid, _>(21), want.uuid, "uuid {ctx}");
        let dec: Decimal = r.get(22);
        assert_eq!(dec, want.decimal, "decimal {ctx}");
        assert_eq!(dec.scale(), want.decimal.scale(), "decimal scale {ctx}");
        assert_eq!(r.get::<serde_json::Value, _>(23), want.json, "json {ctx}");
        assert_eq!(r.get::<IpAddr, _>(24), want.ip, "ip {ctx}");
        assert_eq!(r.get::<Vec<i64>, _>(25), want.ints, "ints {ctx}");
        assert_eq!(
            r.get::<Vec<Option<String>>, _>(26),
            want.texts,
            "texts {ctx}"
        );
        let floats: Option<Vec<Option<f64>>> = r.get(27);
        match (&floats, &want.floats) {
            (Some(g), Some(w)) => {
                assert_eq!(g.len(), w.len(), "floats {ctx}");
                for (g, w) in g.iter().zip(w) {
                    match (g, w) {
                        (Some(g), Some(w)) => assert!(same_f64(*g, *w), "floats {ctx}"),
                        (None, None) => {}
                        _ => panic!("floats NULL mismatch {floats:?} {ctx}"),
                    }
                }
            }
            (None, None) => {}
            _ => panic!("floats NULL mismatch {floats:?} {ctx}"),
        }
        // No pgvector here: the vector's text is loaded into a text column and parsed back.
        let text: String = r.get(28);
        let inner = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or_else(|| panic!("vector text {text:?} {ctx}"));
        let parsed: Vec<f32> = if inner.is_empty() {
            vec![]
        } else {
            inner
                .split(',')
                .map(|v| v.parse().expect("float"))
                .collect()
        };
        assert_eq!(parsed, want.embedding.0, "embedding {ctx}");
    }
}

/// Random rows of every type survive encode -> COPY -> SELECT unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn every_type_round_trips_through_copy() {
    let mut db = TestDb::new("roundtrip").await;
    db.exec(DDL).await;
    let handle = tokio::runtime::Handle::current();
    let db = std::sync::Mutex::new(db);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(row(), 0..24), |mut rows| {
            for (i, r) in rows.iter_mut().enumerate() {
                r.id = i as i64;
            }
            let mut enc = CsvEncoder::new();
            for r in &rows {
                enc.encode(r).expect("encodes");
            }
            let csv = enc.take();
            let mut db = db.lock().expect("lock");
            handle.block_on(async {
                db.exec("TRUNCATE all_types").await;
                db.copy_csv("all_types", &csv).await.unwrap_or_else(|e| {
                    panic!("COPY failed: {e}\n{}", String::from_utf8_lossy(&csv))
                });
                check_equal(&mut db, &rows).await;
            });
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    db.into_inner().expect("lock").drop().await;
}

/// A record that cannot be encoded (a NUL byte, a u64 past bigint) is left out; the rows around
/// it load, and NULL and the empty string stay apart.
#[tokio::test]
async fn bad_records_leave_the_file_valid() {
    #[derive(RelytRecord)]
    struct Row {
        id: i32,
        name: Option<String>,
        big: u64,
    }
    let mut db = TestDb::new("badrec").await;
    db.exec("CREATE TABLE t (id int, name text, big bigint)")
        .await;
    let mut enc = CsvEncoder::new();
    let rows = [
        Row {
            id: 1,
            name: Some(String::new()),
            big: 1,
        },
        Row {
            id: 2,
            name: Some("a\0b".into()),
            big: 2,
        },
        Row {
            id: 3,
            name: None,
            big: 3,
        },
        Row {
            id: 4,
            name: Some("x".into()),
            big: u64::MAX,
        },
        Row {
            id: 5,
            name: Some("\\.".into()),
            big: i64::MAX as u64,
        },
    ];
    let errors: Vec<_> = rows.iter().filter_map(|r| enc.encode(r).err()).collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].column(), Some("name"));
    assert!(errors[0].to_string().contains("NUL"), "{}", errors[0]);
    assert_eq!(errors[1].column(), Some("big"));
    assert!(
        errors[1].to_string().contains("18446744073709551615"),
        "{}",
        errors[1]
    );
    assert_eq!(enc.rows(), 3);
    let n = db.copy_csv("t", &enc.take()).await.expect("copy");
    assert_eq!(n, 3);
    let got: Vec<(i32, Option<String>, i64)> =
        sqlx::query_as("SELECT id, name, big FROM t ORDER BY id")
            .fetch_all(&mut db.conn)
            .await
            .expect("select");
    assert_eq!(
        got,
        [
            (1, Some(String::new()), 1),
            (3, None, 3),
            (5, Some("\\.".to_owned()), i64::MAX)
        ]
    );
    db.drop().await;
}

/// A lone `\.` on a line is COPY's end-of-data marker: as a one-column value it must be quoted, or
/// the rows after it are silently dropped.
#[tokio::test]
async fn end_of_data_marker_is_data() {
    #[derive(RelytRecord)]
    struct One {
        v: Option<String>,
    }
    let mut db = TestDb::new("eod").await;
    db.exec("CREATE TABLE t (v text)").await;
    let values = [
        Some("\\."),
        Some("a"),
        None,
        Some(""),
        Some("\\.x"),
        Some("z"),
    ];
    let mut enc = CsvEncoder::new();
    for v in values {
        enc.encode(&One {
            v: v.map(str::to_owned),
        })
        .expect("encodes");
    }
    let n = db.copy_csv("t", &enc.take()).await.expect("copy");
    assert_eq!(n, values.len() as u64);
    let got: Vec<Option<String>> = sqlx::query_scalar("SELECT v FROM t")
        .fetch_all(&mut db.conn)
        .await
        .expect("select");
    let want: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_owned)).collect();
    assert_eq!(got, want);
    db.drop().await;
}
