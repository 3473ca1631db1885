//! Upserts: loading the same keys twice keeps the row inserted last.
//!
//! ```sh
//! scripts/services.sh start && eval "$(scripts/services.sh env)"
//! cargo run --example upsert
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

#[path = "common.rs"]
mod common;

use relyt_sdk::{BulkProcessor, RelytRecord};

#[derive(RelytRecord)]
struct Price {
    #[relyt(key)]
    sku: String,
    cents: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = sqlx::PgPool::connect(&common::database_url()).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS public.example_prices;
         CREATE TABLE public.example_prices (sku text PRIMARY KEY, cents bigint NOT NULL)",
    )
    .execute(&pool)
    .await?;

    let processor = BulkProcessor::<Price>::builder()
        .pool(pool.clone())
        .table("public.example_prices")
        .s3(common::s3("examples/upsert"))
        .concurrency(4)
        .build()
        .await?;
    let price = |sku: &str, cents| Price {
        sku: sku.into(),
        cents,
    };
    processor
        .insert(&[price("apple", 100), price("pear", 80)])
        .await?;
    processor.flush().await?;
    // The same keys again (and one twice in one call): the last row inserted wins.
    processor
        .insert(&[price("apple", 120), price("pear", 90), price("apple", 125)])
        .await?;
    let stats = processor.shutdown().await?;

    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT sku, cents FROM public.example_prices ORDER BY sku")
            .fetch_all(&pool)
            .await?;
    println!(
        "{rows:?} after {} rows in {} files",
        stats.rows_imported, stats.files_imported
    );
    assert_eq!(rows, [("apple".to_owned(), 125), ("pear".to_owned(), 90)]);
    Ok(())
}
