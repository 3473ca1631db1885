//! Many tasks inserting through clones of one processor.
//!
//! ```sh
//! scripts/services.sh start && eval "$(scripts/services.sh env)"
//! cargo run --release --example many_tasks
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

#[path = "common.rs"]
mod common;

use relyt_sdk::{BulkProcessor, RelytRecord};

#[derive(RelytRecord)]
struct Reading {
    sensor: i32,
    seq: i64,
    value: f64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const TASKS: i32 = 16;
    const PER_TASK: i64 = 50_000;
    let pool = sqlx::PgPool::connect(&common::database_url()).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS public.example_readings;
         CREATE TABLE public.example_readings (sensor int, seq bigint, value float8)",
    )
    .execute(&pool)
    .await?;
    let processor = BulkProcessor::<Reading>::builder()
        .pool(pool.clone())
        .table("public.example_readings")
        .s3(common::s3("examples/many-tasks"))
        .batch_size(100_000)
        .build()
        .await?;

    let mut tasks = tokio::task::JoinSet::new();
    for sensor in 0..TASKS {
        let processor = processor.clone();
        tasks.spawn(async move {
            for chunk in 0..(PER_TASK / 1000) {
                let rows: Vec<Reading> = (0..1000)
                    .map(|i| Reading {
                        sensor,
                        seq: chunk * 1000 + i,
                        value: i as f64 / 7.0,
                    })
                    .collect();
                processor.insert(&rows).await?;
            }
            Ok::<_, relyt_sdk::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let stats = processor.shutdown().await?;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM public.example_readings")
        .fetch_one(&pool)
        .await?;
    println!(
        "{TASKS} tasks inserted {} rows; {count} in the table",
        stats.rows_accepted
    );
    assert_eq!(count, i64::from(TASKS) * PER_TASK);
    Ok(())
}
