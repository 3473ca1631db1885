//! The end-to-end load benchmark of issue 6: the same N reference rows (id bigint, name text of 20
//! chars, score double precision, created_at timestamptz, n int) loaded into fresh tables, with
//! and without a primary key, by the SDK (each import method, default and tuned settings), by
//! plain `COPY FROM STDIN` over one connection (the limit), by multi-row `INSERT` (what users write
//! by hand) and by the hand-written upsert (COPY into a temporary table, then `INSERT ... SELECT
//! ... ON CONFLICT DO UPDATE`).
//!
//! `scripts/bench.sh [rows]` runs it (`cargo bench --bench load`, N from `RELYT_BENCH_ROWS`,
//! default 1 000 000). Every path runs in a child process of its own (this binary, with
//! `RELYT_BENCH_CHILD` naming the path), so each path's peak RSS (`VmHWM`) is its own. The parent
//! creates the tables, runs `CHECKPOINT` before each path, counts the rows afterwards and reads
//! the CPU time that the client, PostgreSQL and s3s-fs spent during the path from `/proc`.
//!
//! Under `cargo test` (no `--bench` argument), with `--test`, or with `RELYT_BENCH_SMOKE=1` it
//! loads 2 000 rows through every path and prints the same table, asserting no time (CI's smoke
//! run). The services come from the `RELYT_TEST_*` variables, as for the integration tests.
//!
//! Each path runs `RELYT_BENCH_REPEAT` times (default 3 up to 2 M rows, 1 above; interleaved: every
//! path once, then again) and the round with the median load time is reported, with every round's
//! time beside it.
//!
//! Other knobs (environment): `RELYT_BENCH_PATHS` (comma-separated path names: run only those,
//! plus the loads that the upsert paths build on), `RELYT_BENCH_BEST` (override the tuned SDK
//! settings, e.g. `concurrency=2,batch_size=200000,part_size=8388608,max_pending_files=4`),
//! `RELYT_BENCH_INSERT_ROWS` (cap of the multi-row INSERT paths, default 200 000) and
//! `RELYT_BENCH_HAND_BATCH` (rows per transaction of the hand-written upsert, default 100 000:
//! 100 000, 250 000 and all rows in one transaction measured the same).
//!
//! Timing: from the first row generated to the data committed. For the SDK, `build()` is shown
//! in its own column and rows/s is computed on insert..shutdown; the other paths connect before
//! the clock starts. The last line of output is machine-readable (`key=value` per figure).

#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use relyt_sdk::{BulkProcessor, CsvEncoder, ImportMethod, RelytRecord, S3Config};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The benchmark's output (stdout); progress goes to stderr.
macro_rules! report {
    ($($arg:tt)*) => { println!($($arg)*) };
}

/// The reference row. No `#[relyt(key)]`: a keyed table's primary key comes from the catalog, so
/// the same record loads (plain COPY) into the table without a key.
#[derive(Debug, Clone, RelytRecord)]
struct Row {
    id: i64,
    name: String,
    score: f64,
    created_at: DateTime<Utc>,
    n: i32,
}

const COLUMNS: &str = "id, name, score, created_at, n";
const DEFAULT_ROWS: u64 = 1_000_000;
const SMOKE_ROWS: u64 = 2_000;
/// Rows generated (and handed to `insert`) at a time.
const GEN_CHUNK: usize = 10_000;
/// Bytes per `COPY` message of the hand-written paths.
const COPY_CHUNK: usize = 1 << 20;
/// Rows per multi-row INSERT statement.
const INSERT_ROWS_PER_STATEMENT: usize = 1_000;
/// Rows loaded by the (slow) multi-row INSERT paths unless `RELYT_BENCH_INSERT_ROWS` says.
const DEFAULT_INSERT_CAP: u64 = 200_000;
/// Rounds of every path (the median is reported) unless `RELYT_BENCH_REPEAT` says: three up to
/// `REPEAT_UP_TO` rows, one above (a 10 M round takes about ten minutes).
const DEFAULT_REPEAT: u64 = 3;
const REPEAT_UP_TO: u64 = 2_000_000;
/// Rows per transaction of the hand-written upsert unless `RELYT_BENCH_HAND_BATCH` says.
const DEFAULT_HAND_BATCH: u64 = 100_000;
/// Linux's USER_HZ (the unit of CPU times in /proc).
const TICKS_PER_SEC: f64 = 100.0;

/// Fills `buf` with the rows of ids `range` (deterministic), reusing its strings.
fn fill(buf: &mut Vec<Row>, range: Range<u64>) {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    let len = (range.end - range.start) as usize;
    buf.truncate(len);
    while buf.len() < len {
        buf.push(Row {
            id: 0,
            name: String::with_capacity(24),
            score: 0.0,
            created_at: base,
            n: 0,
        });
    }
    for (row, i) in buf.iter_mut().zip(range) {
        let i = i as i64;
        row.id = i;
        row.name.clear();
        let _ = write!(row.name, "customer-{:011}", i.wrapping_mul(31));
        row.score = i as f64 * 0.37 + 0.123_456_789;
        row.created_at = base + TimeDelta::microseconds(i * 1_234_567);
        row.n = (i % 1000) as i32;
    }
}

// ------------------------------------------------------------------------------------------------
// Services
// ------------------------------------------------------------------------------------------------

fn env_or_panic(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: the load benchmark needs the local PostgreSQL 15 and S3 server. \
             Start them with `scripts/services.sh start` and load their settings with \
             `eval \"$(scripts/services.sh env)\"`, or run `scripts/bench.sh`, which does both."
        ),
    }
}

fn database_url() -> String {
    env_or_panic("RELYT_TEST_DATABASE_URL")
}

fn s3_config(prefix: String) -> S3Config {
    S3Config::new(env_or_panic("RELYT_TEST_S3_BUCKET"))
        .with_endpoint(env_or_panic("RELYT_TEST_S3_ENDPOINT"))
        .with_region(env_or_panic("RELYT_TEST_S3_REGION"))
        .with_credentials(
            env_or_panic("RELYT_TEST_S3_ACCESS_KEY"),
            env_or_panic("RELYT_TEST_S3_SECRET_KEY"),
        )
        .with_prefix(prefix)
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

// ------------------------------------------------------------------------------------------------
// Paths
// ------------------------------------------------------------------------------------------------

/// SDK settings (the builder's defaults are used as they are for the "default" paths).
#[derive(Debug, Clone, Copy)]
struct SdkSettings {
    concurrency: usize,
    batch_size: u64,
    part_size: usize,
    max_pending_files: usize,
}

/// The tuned settings ("best"); see the module docs to override them. Tried on the 2-core machine,
/// three rounds each: concurrency 1 to 4, batch_size 50 000 to 250 000, part_size 5 to 16 MiB,
/// max_pending_files 4 and 8. Nothing beat the builder's defaults by more than the noise (and
/// concurrency 1 lost 15-30% with a key, 3 lost a little on upserts), so best = the defaults.
const BEST: SdkSettings = SdkSettings {
    concurrency: 2,
    batch_size: 100_000,
    part_size: 8 * 1024 * 1024,
    max_pending_files: 4,
};

fn best_settings() -> SdkSettings {
    let mut s = BEST;
    let Ok(spec) = std::env::var("RELYT_BENCH_BEST") else {
        return s;
    };
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .unwrap_or_else(|| panic!("RELYT_BENCH_BEST: {item:?} is not key=value"));
        let v: u64 = v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("RELYT_BENCH_BEST: {item:?} is not a number"));
        match k {
            "concurrency" => s.concurrency = v as usize,
            "batch_size" => s.batch_size = v,
            "part_size" => s.part_size = v as usize,
            "max_pending_files" => s.max_pending_files = v as usize,
            _ => panic!("RELYT_BENCH_BEST: unknown setting {k:?}"),
        }
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// COPY FROM STDIN over one connection, rows encoded by `CsvEncoder`, ~1 MiB messages.
    Copy,
    /// Multi-row INSERT, 1000 rows per statement, bound parameters, autocommit.
    Insert,
    /// COPY into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO UPDATE.
    HandUpsert,
    /// The BulkProcessor; `true` for the tuned settings.
    Sdk(ImportMethod, bool),
}

#[derive(Debug, Clone, Copy)]
struct Path {
    name: &'static str,
    kind: Kind,
    /// Whether the table has a primary key.
    pk: bool,
    /// Loads into the table the previous path filled (every key exists) instead of a fresh one.
    again: bool,
}

const fn path(name: &'static str, kind: Kind, pk: bool, again: bool) -> Path {
    Path {
        name,
        kind,
        pk,
        again,
    }
}

const CLIENT: ImportMethod = ImportMethod::ClientCopy;
const PULL: ImportMethod = ImportMethod::ServerPull;

/// Every path, in the order they run.
const PATHS: &[Path] = &[
    path("copy_nopk", Kind::Copy, false, false),
    path(
        "sdk_client_default_nopk",
        Kind::Sdk(CLIENT, false),
        false,
        false,
    ),
    path(
        "sdk_client_best_nopk",
        Kind::Sdk(CLIENT, true),
        false,
        false,
    ),
    path(
        "sdk_pull_default_nopk",
        Kind::Sdk(PULL, false),
        false,
        false,
    ),
    path("sdk_pull_best_nopk", Kind::Sdk(PULL, true), false, false),
    path("insert_nopk", Kind::Insert, false, false),
    path("copy_pk", Kind::Copy, true, false),
    path(
        "sdk_client_default_pk_new",
        Kind::Sdk(CLIENT, false),
        true,
        false,
    ),
    path(
        "sdk_client_best_pk_new",
        Kind::Sdk(CLIENT, true),
        true,
        false,
    ),
    path(
        "sdk_client_best_pk_existing",
        Kind::Sdk(CLIENT, true),
        true,
        true,
    ),
    path(
        "sdk_pull_default_pk_new",
        Kind::Sdk(PULL, false),
        true,
        false,
    ),
    path("sdk_pull_best_pk_new", Kind::Sdk(PULL, true), true, false),
    path(
        "sdk_pull_best_pk_existing",
        Kind::Sdk(PULL, true),
        true,
        true,
    ),
    path("hand_upsert_new", Kind::HandUpsert, true, false),
    path("hand_upsert_existing", Kind::HandUpsert, true, true),
    path("insert_pk", Kind::Insert, true, false),
];

/// The SDK configuration the ratios of the last line use (the default method, tuned settings).
const RATIO_SDK: &str = "sdk_client_best";

fn find_path(name: &str) -> &'static Path {
    PATHS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("unknown benchmark path {name:?}"))
}

fn method_name(m: ImportMethod) -> &'static str {
    match m {
        ImportMethod::ClientCopy => "ClientCopy",
        ImportMethod::ServerPull => "ServerPull",
        _ => "other",
    }
}

// ------------------------------------------------------------------------------------------------
// The child: one path, timed
// ------------------------------------------------------------------------------------------------

/// What a child measured.
#[derive(Debug, Default, Clone)]
struct Measured {
    rows: u64,
    build: f64,
    load: f64,
    /// SDK: time inside `insert` calls, and in `shutdown`.
    inserting: f64,
    draining: f64,
    /// SDK: mean number of files staged and waiting for an importer, sampled every 20 ms.
    mean_waiting: f64,
    files: u64,
    cpu_ticks: u64,
    rss_kib: u64,
}

const RESULT_TAG: &str = "RELYT_BENCH_RESULT";

fn child(name: &str) {
    let path = find_path(name);
    let table = env_or_panic("RELYT_BENCH_TABLE");
    let rows = env_u64("RELYT_BENCH_N", 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut m = rt.block_on(run_path(path, &table, rows));
    drop(rt);
    m.cpu_ticks = self_cpu_ticks();
    m.rss_kib = vm_hwm_kib();
    report!(
        "{RESULT_TAG} rows={} build={} load={} inserting={} draining={} mean_waiting={} files={} \
         cpu_ticks={} rss_kib={}",
        m.rows,
        m.build,
        m.load,
        m.inserting,
        m.draining,
        m.mean_waiting,
        m.files,
        m.cpu_ticks,
        m.rss_kib
    );
}

async fn connect() -> PgConnection {
    PgConnection::connect(&database_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to RELYT_TEST_DATABASE_URL ({e}); is the database running? \
             `scripts/services.sh start` starts it"
            )
        })
}

async fn run_path(path: &Path, table: &str, rows: u64) -> Measured {
    match path.kind {
        Kind::Copy => copy_path(table, rows).await,
        Kind::Insert => insert_path(table, rows).await,
        Kind::HandUpsert => hand_upsert_path(table, rows).await,
        Kind::Sdk(method, best) => sdk_path(path.name, table, rows, method, best).await,
    }
}

/// Sends rows `range` through an open COPY in ~1 MiB messages.
async fn copy_rows(
    copy: &mut sqlx::postgres::PgCopyIn<&mut PgConnection>,
    range: Range<u64>,
    buf: &mut Vec<Row>,
    enc: &mut CsvEncoder,
) {
    let mut start = range.start;
    while start < range.end {
        let end = (start + GEN_CHUNK as u64).min(range.end);
        fill(buf, start..end);
        for row in buf.iter() {
            enc.encode(row).expect("the reference row encodes");
            if enc.len() >= COPY_CHUNK {
                copy.send(enc.take()).await.expect("COPY data");
                enc.reserve(COPY_CHUNK + 4096);
            }
        }
        start = end;
    }
    if !enc.is_empty() {
        copy.send(enc.take()).await.expect("COPY data");
    }
}

async fn copy_path(table: &str, rows: u64) -> Measured {
    let mut conn = connect().await;
    let mut buf = Vec::with_capacity(GEN_CHUNK);
    let mut enc = CsvEncoder::with_capacity(COPY_CHUNK + 4096);
    let start = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({COLUMNS}) FROM STDIN (FORMAT csv)"))
        .await
        .expect("COPY FROM STDIN");
    copy_rows(&mut copy, 0..rows, &mut buf, &mut enc).await;
    let loaded = copy.finish().await.expect("COPY finishes");
    let load = start.elapsed().as_secs_f64();
    assert_eq!(loaded, rows);
    Measured {
        rows,
        load,
        ..Measured::default()
    }
}

fn insert_sql(table: &str, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({COLUMNS}) VALUES ");
    for r in 0..rows {
        let b = r * 5;
        let sep = if r == 0 { "" } else { "," };
        let _ = write!(
            sql,
            "{sep}(${},${},${},${},${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5
        );
    }
    sql
}

async fn insert_path(table: &str, rows: u64) -> Measured {
    let mut conn = connect().await;
    let full = insert_sql(table, INSERT_ROWS_PER_STATEMENT);
    let mut buf = Vec::with_capacity(INSERT_ROWS_PER_STATEMENT);
    let start = Instant::now();
    let mut done = 0;
    while done < rows {
        let end = (done + INSERT_ROWS_PER_STATEMENT as u64).min(rows);
        fill(&mut buf, done..end);
        let sql = if buf.len() == INSERT_ROWS_PER_STATEMENT {
            full.clone()
        } else {
            insert_sql(table, buf.len())
        };
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in &buf {
            query = query
                .bind(r.id)
                .bind(r.name.as_str())
                .bind(r.score)
                .bind(r.created_at)
                .bind(r.n);
        }
        let result = query.execute(&mut conn).await.expect("multi-row INSERT");
        assert_eq!(result.rows_affected(), end - done);
        done = end;
    }
    Measured {
        rows,
        load: start.elapsed().as_secs_f64(),
        ..Measured::default()
    }
}

async fn hand_upsert_path(table: &str, rows: u64) -> Measured {
    let batch = env_u64("RELYT_BENCH_HAND_BATCH", DEFAULT_HAND_BATCH).max(1);
    let mut conn = connect().await;
    let mut buf = Vec::with_capacity(GEN_CHUNK);
    let mut enc = CsvEncoder::with_capacity(COPY_CHUNK + 4096);
    let upsert = format!(
        "INSERT INTO {table} ({COLUMNS}) SELECT {COLUMNS} FROM relyt_bench_stage \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, score = EXCLUDED.score, \
         created_at = EXCLUDED.created_at, n = EXCLUDED.n"
    );
    let start = Instant::now();
    conn.execute(
        "CREATE TEMP TABLE relyt_bench_stage (id bigint, name text, score double precision, \
         created_at timestamptz, n int) ON COMMIT DELETE ROWS",
    )
    .await
    .expect("create the temporary table");
    let mut done = 0;
    while done < rows {
        let end = (done + batch).min(rows);
        let mut tx = conn.begin().await.expect("BEGIN");
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY relyt_bench_stage ({COLUMNS}) FROM STDIN (FORMAT csv)"
            ))
            .await
            .expect("COPY into the temporary table");
        copy_rows(&mut copy, done..end, &mut buf, &mut enc).await;
        copy.finish().await.expect("COPY finishes");
        let merged = tx
            .execute(AssertSqlSafe(upsert.clone()))
            .await
            .expect("INSERT ... ON CONFLICT DO UPDATE");
        assert_eq!(merged.rows_affected(), end - done);
        tx.commit().await.expect("COMMIT");
        done = end;
    }
    Measured {
        rows,
        load: start.elapsed().as_secs_f64(),
        ..Measured::default()
    }
}

async fn sdk_path(
    name: &str,
    table: &str,
    rows: u64,
    method: ImportMethod,
    best: bool,
) -> Measured {
    let t0 = Instant::now();
    let mut builder = BulkProcessor::<Row>::builder()
        .database_url(database_url())
        .table(table)
        .s3(s3_config(format!("bench/{}-{name}", std::process::id())))
        .import_method(method);
    if best {
        let s = best_settings();
        builder = builder
            .concurrency(s.concurrency)
            .batch_size(s.batch_size)
            .part_size(s.part_size)
            .max_pending_files(s.max_pending_files);
    }
    let processor = builder.build().await.expect("build the processor");
    let build = t0.elapsed().as_secs_f64();

    // A sampler of the import queue: is it the importers or the producer that waits?
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let p = processor.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut sum, mut n) = (0u64, 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                sum += p.stats().files_waiting;
                n += 1;
            }
            sum as f64 / n.max(1) as f64
        })
    };

    let start = Instant::now();
    let mut buf = Vec::with_capacity(GEN_CHUNK);
    let mut inserting = Duration::ZERO;
    let mut done = 0;
    while done < rows {
        let end = (done + GEN_CHUNK as u64).min(rows);
        fill(&mut buf, done..end);
        let t = Instant::now();
        processor.insert(&buf).await.expect("insert");
        inserting += t.elapsed();
        done = end;
    }
    let drain_start = Instant::now();
    let stats = processor.shutdown().await.expect("shutdown");
    let load = start.elapsed().as_secs_f64();
    let draining = drain_start.elapsed().as_secs_f64();
    assert_eq!(stats.rows_imported, rows, "{stats:?}");
    stop.store(true, Ordering::Relaxed);
    let mean_waiting = sampler.await.unwrap_or(0.0);
    Measured {
        rows,
        build,
        load,
        inserting: inserting.as_secs_f64(),
        draining,
        mean_waiting,
        files: stats.files_imported,
        ..Measured::default()
    }
}

// ------------------------------------------------------------------------------------------------
// /proc
// ------------------------------------------------------------------------------------------------

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// (comm, utime + stime, cutime + cstime) of a /proc/<pid>/stat file.
fn parse_stat(stat: &str) -> Option<(&str, u64, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
    let f = |i: usize| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some((comm, f(11) + f(12), f(13) + f(14)))
}

fn self_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s).map(|(_, own, _)| own))
        .unwrap_or(0)
}

/// CPU ticks so far: the machine (busy, total), every PostgreSQL process (with the reaped
/// backends and their curl children, through the postmaster's and backends' child times) and
/// s3s-fs.
#[derive(Debug, Default, Clone, Copy)]
struct CpuSnapshot {
    busy: u64,
    total: u64,
    postgres: u64,
    s3: u64,
}

impl CpuSnapshot {
    fn take() -> Self {
        let mut snap = Self::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/stat")
            && let Some(line) = stat.lines().next()
        {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            snap.total = total;
            snap.busy = total - idle;
        }
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                match parse_stat(&stat) {
                    Some(("postgres", own, children)) => snap.postgres += own + children,
                    Some(("s3s-fs", own, _)) => snap.s3 += own,
                    _ => {}
                }
            }
        }
        snap
    }
}

// ------------------------------------------------------------------------------------------------
// The parent
// ------------------------------------------------------------------------------------------------

/// One path's figures.
#[derive(Debug, Clone)]
struct Outcome {
    path: Path,
    m: Measured,
    wall: f64,
    cpu_pg: f64,
    cpu_s3: f64,
    busy_pct: f64,
    /// Load times of every round (seconds), and the highest peak RSS of any round.
    loads: Vec<f64>,
    max_rss_kib: u64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.m.rows as f64 / self.m.load.max(1e-9)
    }
}

/// The run with the median load time, carrying every round's load time and the highest RSS.
fn median(mut runs: Vec<Outcome>) -> Outcome {
    runs.sort_by(|a, b| a.m.load.total_cmp(&b.m.load));
    let loads: Vec<f64> = runs.iter().map(|o| o.m.load).collect();
    let max_rss_kib = runs.iter().map(|o| o.m.rss_kib).max().unwrap_or(0);
    let mut mid = runs.swap_remove(runs.len() / 2);
    mid.loads = loads;
    mid.max_rss_kib = max_rss_kib;
    mid
}

fn parse_result(stdout: &str) -> Option<Measured> {
    let line = stdout.lines().find(|l| l.starts_with(RESULT_TAG))?;
    let kv: HashMap<&str, &str> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.split_once('='))
        .collect();
    let f = |k: &str| kv.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let u = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(Measured {
        rows: u("rows"),
        build: f("build"),
        load: f("load"),
        inserting: f("inserting"),
        draining: f("draining"),
        mean_waiting: f("mean_waiting"),
        files: u("files"),
        cpu_ticks: u("cpu_ticks"),
        rss_kib: u("rss_kib"),
    })
}

/// `1m`, `10m`, `2k`, or the number.
fn count_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn selected_paths() -> Vec<Path> {
    let Ok(list) = std::env::var("RELYT_BENCH_PATHS") else {
        return PATHS.to_vec();
    };
    let wanted: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for w in &wanted {
        find_path(w);
    }
    let mut keep: Vec<bool> = PATHS.iter().map(|p| wanted.contains(&p.name)).collect();
    // A load "again" needs the load before it.
    for i in (1..PATHS.len()).rev() {
        if keep[i] && PATHS[i].again {
            keep[i - 1] = true;
        }
    }
    PATHS
        .iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

async fn exec(conn: &mut PgConnection, sql: String) {
    conn.execute(AssertSqlSafe(sql.clone()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn parent(rows: u64, smoke: bool) {
    let started = Instant::now();
    let insert_cap = env_u64("RELYT_BENCH_INSERT_ROWS", DEFAULT_INSERT_CAP);
    let paths = selected_paths();
    let best = best_settings();
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut conn = connect().await;
    let schema = format!("relyt_bench_{}", std::process::id());
    exec(
        &mut conn,
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    )
    .await;
    let (server,): (String,) = sqlx::query_as("SELECT current_setting('server_version')")
        .fetch_one(&mut conn)
        .await
        .expect("server version");

    let repeat = if smoke {
        1
    } else {
        let default = if rows <= REPEAT_UP_TO {
            DEFAULT_REPEAT
        } else {
            1
        };
        env_u64("RELYT_BENCH_REPEAT", default).max(1)
    };
    let mut runs: Vec<Vec<Outcome>> = vec![Vec::new(); paths.len()];
    for round in 0..repeat {
        for (i, path) in paths.iter().enumerate() {
            let table = format!("{schema}.{}", path.name);
            let table = if path.again {
                format!("{schema}.{}", paths[i - 1].name)
            } else {
                let key = if path.pk { " PRIMARY KEY" } else { "" };
                exec(
                    &mut conn,
                    format!(
                        "CREATE TABLE {table} (id bigint{key}, name text, score double precision, \
                         created_at timestamptz, n int)"
                    ),
                )
                .await;
                table
            };
            let n = if path.kind == Kind::Insert {
                rows.min(insert_cap)
            } else {
                rows
            };
            exec(&mut conn, "CHECKPOINT".into()).await;
            eprintln!(
                "bench: round {}/{repeat}: {} ({n} rows into {table})",
                round + 1,
                path.name
            );
            let before = CpuSnapshot::take();
            let t = Instant::now();
            let out = Command::new(&exe)
                .env("RELYT_BENCH_CHILD", path.name)
                .env("RELYT_BENCH_TABLE", &table)
                .env("RELYT_BENCH_N", n.to_string())
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .expect("spawn the benchmark child");
            let wall = t.elapsed().as_secs_f64();
            let after = CpuSnapshot::take();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "path {} failed ({}); its output:\n{stdout}",
                path.name,
                out.status
            );
            let m = parse_result(&stdout)
                .unwrap_or_else(|| panic!("path {} printed no result:\n{stdout}", path.name));
            let (count,): (i64,) =
                sqlx::query_as(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut conn)
                    .await
                    .expect("count the rows");
            assert_eq!(count as u64, n, "rows in {table} after {}", path.name);
            let total = after.total.saturating_sub(before.total).max(1) as f64;
            runs[i].push(Outcome {
                path: *path,
                m,
                wall,
                // Saturating: a service restarted meanwhile makes a counter go back.
                cpu_pg: after.postgres.saturating_sub(before.postgres) as f64 / TICKS_PER_SEC,
                cpu_s3: after.s3.saturating_sub(before.s3) as f64 / TICKS_PER_SEC,
                busy_pct: 100.0 * after.busy.saturating_sub(before.busy) as f64 / total,
                loads: Vec::new(),
                max_rss_kib: 0,
            });
            let reused_next = paths.get(i + 1).is_some_and(|p| p.again);
            if !reused_next {
                exec(&mut conn, format!("DROP TABLE {table}")).await;
            }
        }
    }
    let outcomes: Vec<Outcome> = runs.into_iter().map(median).collect();
    exec(&mut conn, format!("DROP SCHEMA {schema} CASCADE")).await;
    conn.close().await.ok();

    print_report(
        &outcomes,
        rows,
        repeat,
        smoke,
        &best,
        &server,
        started.elapsed(),
    );
}

fn print_report(
    outcomes: &[Outcome],
    rows: u64,
    repeat: u64,
    smoke: bool,
    best: &SdkSettings,
    server: &str,
    elapsed: Duration,
) {
    let by_name: HashMap<&str, &Outcome> = outcomes.iter().map(|o| (o.path.name, o)).collect();
    let rate = |name: &str| by_name.get(name).map(|o| o.rate());
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let fmt_ratio = |r: Option<f64>| r.map_or_else(|| "".to_owned(), |r| format!("{r:.2}"));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    report!(
        "# relyt-sdk load benchmark: {rows} rows, median of {repeat} round(s){}",
        if smoke {
            " (SMOKE RUN: tiny, timings meaningless)"
        } else {
            ""
        }
    );
    report!(
        "PostgreSQL {server}; {cores} cores; SDK best = concurrency={} batch_size={} part_size={} \
         max_pending_files={}; default = the builder's defaults; multi-row INSERT capped at {} rows",
        best.concurrency,
        best.batch_size,
        best.part_size,
        best.max_pending_files,
        outcomes
            .iter()
            .find(|o| o.path.kind == Kind::Insert)
            .map_or(0, |o| o.m.rows)
    );
    report!("");
    report!(
        "| path | method / settings | rows | build s | load s | rows/s | ÷ COPY | ÷ INSERT | ÷ hand upsert | peak RSS MiB | load s, every round |"
    );
    report!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for o in outcomes {
        let p = &o.path;
        let kind = if p.pk { "pk" } else { "nopk" };
        let copy_ref = rate(&format!("copy_{kind}"));
        let insert_ref = rate(&format!("insert_{kind}"));
        let (how, vs_copy, vs_insert, vs_hand) = match p.kind {
            Kind::Copy => ("COPY FROM STDIN, 1 connection".to_owned(), None, None, None),
            Kind::Insert => (
                "INSERT, 1000 rows/statement".to_owned(),
                ratio(Some(o.rate()), copy_ref),
                None,
                None,
            ),
            Kind::HandUpsert => (
                "COPY to temp + ON CONFLICT DO UPDATE".to_owned(),
                ratio(Some(o.rate()), copy_ref),
                ratio(Some(o.rate()), insert_ref),
                None,
            ),
            Kind::Sdk(method, best) => {
                let hand = if !p.pk {
                    None
                } else if p.again {
                    rate("hand_upsert_existing")
                } else {
                    rate("hand_upsert_new")
                };
                (
                    format!(
                        "SDK {}, {}",
                        method_name(method),
                        if best { "best" } else { "default" }
                    ),
                    ratio(Some(o.rate()), copy_ref),
                    ratio(Some(o.rate()), insert_ref),
                    ratio(Some(o.rate()), hand),
                )
            }
        };
        let build = if matches!(p.kind, Kind::Sdk(..)) {
            format!("{:.2}", o.m.build)
        } else {
            "".to_owned()
        };
        report!(
            "| {} | {how} | {} | {build} | {:.2} | {:.0} | {} | {} | {} | {:.0} | {} |",
            p.name,
            o.m.rows,
            o.m.load,
            o.rate(),
            fmt_ratio(vs_copy),
            fmt_ratio(vs_insert),
            fmt_ratio(vs_hand),
            o.max_rss_kib as f64 / 1024.0,
            o.loads
                .iter()
                .map(|l| format!("{l:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    report!("");
    report!(
        "Where the time and CPU went, in the median round (CPU seconds during the path; the \
         machine has {cores} cores; SDK phases: time inside insert() calls, then in shutdown(); \
         waiting = mean files staged and queued for an importer):"
    );
    report!("");
    report!(
        "| path | load s | child wall s | client CPU s | postgres CPU s | s3s-fs CPU s | machine busy % | insert() s | shutdown() s | files | waiting |"
    );
    report!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for o in outcomes {
        let sdk = matches!(o.path.kind, Kind::Sdk(..));
        let opt = |v: String| if sdk { v } else { String::new() };
        report!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |",
            o.path.name,
            o.m.load,
            o.wall,
            o.m.cpu_ticks as f64 / TICKS_PER_SEC,
            o.cpu_pg,
            o.cpu_s3,
            o.busy_pct,
            opt(format!("{:.2}", o.m.inserting)),
            opt(format!("{:.2}", o.m.draining)),
            opt(o.m.files.to_string()),
            opt(format!("{:.1}", o.m.mean_waiting)),
        );
    }
    report!("");
    report!(
        "ratios use {RATIO_SDK}_*; CPU and busy % include the child's start-up (process spawn, \
         connect, build) and whatever else ran on the machine; total {:.1} s",
        elapsed.as_secs_f64()
    );

    let mut last = Vec::new();
    let mut push = |k: String, v: Option<f64>, digits: usize| {
        if let Some(v) = v {
            last.push(format!("{k}={v:.digits$}"));
        }
    };
    push(
        "ratio_copy_nopk".into(),
        ratio(rate(&format!("{RATIO_SDK}_nopk")), rate("copy_nopk")),
        2,
    );
    push(
        "ratio_copy_pk_new".into(),
        ratio(rate(&format!("{RATIO_SDK}_pk_new")), rate("copy_pk")),
        2,
    );
    push(
        "ratio_upsert_existing".into(),
        ratio(
            rate(&format!("{RATIO_SDK}_pk_existing")),
            rate("hand_upsert_existing"),
        ),
        2,
    );
    push(
        "ratio_insert".into(),
        ratio(rate(&format!("{RATIO_SDK}_nopk")), rate("insert_nopk")),
        1,
    );
    push(
        format!("rss_mib_{}", count_label(rows)),
        by_name
            .get(format!("{RATIO_SDK}_nopk").as_str())
            .map(|o| o.max_rss_kib as f64 / 1024.0),
        0,
    );
    push("rows".into(), Some(rows as f64), 0);
    for o in outcomes {
        push(format!("rows_per_s_{}", o.path.name), Some(o.rate()), 0);
    }
    push("smoke".into(), Some(if smoke { 1.0 } else { 0.0 }), 0);
    push("total_s".into(), Some(elapsed.as_secs_f64()), 1);
    report!("{}", last.join(" "));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(name) = std::env::var("RELYT_BENCH_CHILD") {
        child(&name);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list`: this target holds no named tests.
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let test = args.iter().any(|a| a == "--test");
    let smoke = test || !bench || std::env::var("RELYT_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let rows = if smoke {
        SMOKE_ROWS
    } else {
        env_u64("RELYT_BENCH_ROWS", DEFAULT_ROWS)
    };
    assert!(rows > 0, "RELYT_BENCH_ROWS must be at least 1");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(parent(rows, smoke));
}
