//! The `insert()` hot path of the BulkProcessor: rows/s with 1 and with 8 inserting tasks, while
//! under the backpressure limit, so that no network wait is measured.
//!
//! Each processor gets a huge `batch_size`, `max_file_bytes` and `max_file_age` and a 64 MiB
//! `part_size`, so nothing freezes and no part leaves for S3 while it is measured; a processor
//! takes at most as many 10 000-row slices as fit in one part (about 50 MB), then it is dropped
//! (its rows were never meant to load) and the next round starts on a fresh one, outside the
//! timing. Each round checks that nothing was staged (`bytes_staged == 0`): the figures are pure
//! encoding, lane hashing and locking. Both a table without a key (one lane) and one with a primary
//! key (rows hashed by key over `concurrency` lanes) are measured.
//!
//! It needs the services (`build()` connects, registers its job and checks the table):
//! `scripts/services.sh start; eval "$(scripts/services.sh env)"; cargo bench --bench insert_path`.
//! Under `cargo test` each routine runs once, untimed.

#![allow(clippy::print_stdout, missing_docs)] // criterion_group! generates undocumented items

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use relyt_sdk::{BulkProcessor, CsvEncoder, RelytRecord, S3Config};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tokio::runtime::Runtime;

/// The reference row (its key, if any, comes from the table).
#[derive(Debug, Clone, RelytRecord)]
struct Row {
    id: i64,
    name: String,
    score: f64,
    created_at: DateTime<Utc>,
    n: i32,
}

const SLICE: usize = 10_000;
const PART_SIZE: usize = 64 * 1024 * 1024;

fn rows(count: usize) -> Vec<Row> {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    (0..count as i64)
        .map(|i| Row {
            id: i,
            name: format!("customer-{:011}", i * 31),
            score: i as f64 * 0.37 + 0.123_456_789,
            created_at: base + TimeDelta::microseconds(i * 1_234_567),
            n: (i % 1000) as i32,
        })
        .collect()
}

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this benchmark builds real processors, which connect to \
             PostgreSQL and S3. Start the local services with `scripts/services.sh start` and load \
             their settings with `eval \"$(scripts/services.sh env)\"`."
        ),
    }
}

fn s3_config() -> S3Config {
    S3Config::new(var("RELYT_TEST_S3_BUCKET"))
        .with_endpoint(var("RELYT_TEST_S3_ENDPOINT"))
        .with_region(var("RELYT_TEST_S3_REGION"))
        .with_credentials(
            var("RELYT_TEST_S3_ACCESS_KEY"),
            var("RELYT_TEST_S3_SECRET_KEY"),
        )
        .with_prefix(format!("bench/insert-path-{}", std::process::id()))
}

/// The schema and tables the processors point at, and the jobs they registered.
struct Fixture {
    rt: Runtime,
    schema: String,
    jobs: std::sync::Mutex<Vec<String>>,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let schema = format!("relyt_bench_insert_{}", std::process::id());
        rt.block_on(async {
            let mut conn = connect().await;
            conn.execute(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
                 CREATE TABLE {schema}.nopk (id bigint, name text, score double precision, \
                 created_at timestamptz, n int); \
                 CREATE TABLE {schema}.pk (id bigint PRIMARY KEY, name text, \
                 score double precision, created_at timestamptz, n int)"
            )))
            .await
            .expect("create the benchmark tables");
        });
        Self {
            rt,
            schema,
            jobs: std::sync::Mutex::new(Vec::new()),
        }
    }

    async fn processor(&self, table: &str) -> BulkProcessor<Row> {
        let p = BulkProcessor::<Row>::builder()
            .database_url(var("RELYT_TEST_DATABASE_URL"))
            .table(format!("{}.{table}", self.schema))
            .s3(s3_config())
            .batch_size(u64::MAX)
            .max_file_bytes(u64::MAX)
            .max_file_age(Duration::from_secs(24 * 3600))
            .part_size(PART_SIZE)
            .build()
            .await
            .expect("build a processor (are the services running?)");
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(p.process_id().to_string());
        p
    }

    /// Drops the tables and the jobs the dropped processors left RUNNING.
    fn cleanup(&self) {
        let jobs = std::mem::take(
            &mut *self
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.rt.block_on(async {
            let mut conn = connect().await;
            conn.execute(AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.schema
            )))
            .await
            .expect("drop the benchmark schema");
            sqlx::query("DELETE FROM relyt_sys.relyt_loader_job WHERE process_id = ANY($1)")
                .bind(&jobs)
                .execute(&mut conn)
                .await
                .expect("delete the benchmark's jobs");
        });
    }
}

async fn connect() -> PgConnection {
    PgConnection::connect(&var("RELYT_TEST_DATABASE_URL"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to RELYT_TEST_DATABASE_URL ({e}); `scripts/services.sh start` \
                 starts the database"
            )
        })
}

/// Times `iters` inserts of `slice` spread over `tasks` tasks, in rounds of at most `per_round`
/// inserts per processor; only the inserts are timed.
fn run(
    fx: &Fixture,
    table: &str,
    tasks: usize,
    slice: &Arc<Vec<Row>>,
    per_round: u64,
    iters: u64,
) -> Duration {
    fx.rt.block_on(async {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let round = left.min(per_round);
            left -= round;
            let p = fx.processor(table).await;
            let start = Instant::now();
            if tasks == 1 {
                for _ in 0..round {
                    p.insert(slice).await.expect("insert");
                }
            } else {
                let mut handles = Vec::with_capacity(tasks);
                for t in 0..tasks as u64 {
                    let share = round / tasks as u64 + u64::from(t < round % tasks as u64);
                    let p = p.clone();
                    let slice = slice.clone();
                    handles.push(tokio::spawn(async move {
                        for _ in 0..share {
                            p.insert(&slice).await.expect("insert");
                        }
                    }));
                }
                for h in handles {
                    h.await.expect("an inserting task");
                }
            }
            total += start.elapsed();
            let stats = p.stats();
            assert_eq!(stats.rows_accepted, round * SLICE as u64);
            assert_eq!(
                stats.bytes_staged, 0,
                "a part left for S3 during the measurement: the figure would include network time"
            );
            drop(p);
        }
        total
    })
}

fn insert_path(c: &mut Criterion) {
    let fx = Fixture::new();
    let slice = Arc::new(rows(SLICE));
    let mut probe = CsvEncoder::new();
    for r in slice.iter() {
        probe.encode(r).expect("encodes");
    }
    // Inserts that fit in one part (with room to spare), per processor.
    let per_round = ((PART_SIZE as f64 * 0.8) / probe.len() as f64).max(1.0) as u64;

    let mut group = c.benchmark_group("insert_path");
    group.throughput(Throughput::Elements(SLICE as u64));
    group.sampling_mode(SamplingMode::Flat);
    for table in ["nopk", "pk"] {
        for tasks in [1usize, 8] {
            group.bench_function(format!("{table}/{tasks}_tasks"), |b| {
                b.iter_custom(|iters| run(&fx, table, tasks, &slice, per_round, iters));
            });
        }
    }
    group.finish();
    fx.cleanup();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = insert_path
}
criterion_main!(benches);
