//! The encoder's speed on one core, on the reference row (id bigint, name text of ~20 chars,
//! score double, created_at timestamptz, n int).
//!
//! `cargo bench --bench encode` prints rows/s ("elements") and bytes/s. Under `cargo test` each
//! routine runs once, untimed (a smoke run).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relyt_sdk::{CsvEncoder, RelytRecord};

/// The reference row of the project's benchmarks.
#[derive(RelytRecord)]
struct Reference {
    #[relyt(key)]
    id: i64,
    name: String,
    score: f64,
    created_at: DateTime<Utc>,
    n: i32,
}

fn rows(count: usize) -> Vec<Reference> {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    (0..count)
        .map(|i| Reference {
            id: i as i64 * 7919,
            name: format!("customer-{:011}", i * 31),
            score: (i as f64) * 0.37 + 0.123_456_789,
            created_at: base + chrono::Duration::microseconds(i as i64 * 1_234_567),
            n: (i % 1000) as i32,
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    const N: usize = 10_000;
    let rows = rows(N);
    let mut probe = CsvEncoder::new();
    for r in &rows {
        probe.encode(r).expect("encodes");
    }
    let bytes = probe.len();

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("reference_rows", |b| {
        let mut enc = CsvEncoder::with_capacity(bytes);
        b.iter(|| {
            for r in &rows {
                enc.encode(black_box(r)).expect("encodes");
            }
            black_box(enc.take());
            enc.reserve(bytes);
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("reference_bytes", |b| {
        let mut enc = CsvEncoder::with_capacity(bytes);
        b.iter(|| {
            for r in &rows {
                enc.encode(black_box(r)).expect("encodes");
            }
            black_box(enc.take());
            enc.reserve(bytes);
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
