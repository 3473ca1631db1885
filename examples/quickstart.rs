//! Loads one million rows into PostgreSQL through files staged on S3, with a progress bar, and
//! checks the count. `scripts/demo.sh` starts the local services and runs it.
//!
//! ```sh
//! scripts/services.sh start && eval "$(scripts/services.sh env)"
//! cargo run --release --example quickstart -- [rows] [client-copy|server-pull]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

#[path = "common.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use relyt_sdk::{BulkProcessor, ImportMethod, RelytRecord};

/// The reference row of the project's benchmarks.
#[derive(RelytRecord)]
#[relyt(table = "quickstart_events", schema = "public")]
struct Event {
    #[relyt(key)]
    id: i64,
    name: String,
    score: f64,
    created_at: DateTime<Utc>,
    n: i32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let method = match args.next().as_deref() {
        None | Some("client-copy") => ImportMethod::ClientCopy,
        Some("server-pull") => ImportMethod::ServerPull,
        Some(other) => {
            return Err(format!("unknown method {other:?}: client-copy or server-pull").into());
        }
    };

    let pool = sqlx::PgPool::connect(&common::database_url()).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS public.quickstart_events;
         CREATE TABLE public.quickstart_events (
             id bigint PRIMARY KEY, name text NOT NULL, score double precision,
             created_at timestamptz NOT NULL, n int)",
    )
    .execute(&pool)
    .await?;

    let processor = BulkProcessor::<Event>::builder()
        .pool(pool.clone())
        .s3(common::s3("quickstart"))
        .import_method(method)
        .batch_size(200_000)
        .concurrency(2)
        .build()
        .await?;
    println!("process id {} ({method:?})", processor.process_id());

    let bar = ProgressBar::new(rows as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows imported ({per_sec}) {msg}",
        )?
        .progress_chars("=> "),
    );
    let progress = {
        let (bar, processor) = (bar.clone(), processor.clone());
        tokio::spawn(async move {
            loop {
                let stats = processor.stats();
                bar.set_position(stats.rows_imported);
                bar.set_message(format!(
                    "| accepted {} | files open {} waiting {} imported {}",
                    stats.rows_accepted,
                    stats.files_open,
                    stats.files_waiting,
                    stats.files_imported
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let start = Instant::now();
    let base = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut batch = Vec::with_capacity(10_000);
    for id in 0..rows {
        batch.push(Event {
            id,
            name: format!("customer-{:011}", id * 31),
            score: id as f64 * 0.37,
            created_at: base + chrono::Duration::milliseconds(id),
            n: (id % 1000) as i32,
        });
        if batch.len() == batch.capacity() {
            processor.insert(&batch).await?;
            batch.clear();
        }
    }
    processor.insert(&batch).await?;
    let stats = processor.shutdown().await?;
    let elapsed = start.elapsed();
    progress.abort();
    bar.set_position(stats.rows_imported);
    bar.finish();

    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM public.quickstart_events")
        .fetch_one(&pool)
        .await?;
    println!(
        "imported {} rows in {} files ({:.1} MB staged) in {:.2} s: {:.0} rows/s; rejected {}",
        stats.rows_imported,
        stats.files_imported,
        stats.bytes_staged as f64 / 1e6,
        elapsed.as_secs_f64(),
        stats.rows_imported as f64 / elapsed.as_secs_f64(),
        stats.rows_rejected
    );
    println!("count(*) in PostgreSQL: {count}");
    if count != rows {
        return Err(format!("expected {rows} rows in the table, found {count}").into());
    }
    println!("ok: the table holds every row");
    Ok(())
}
