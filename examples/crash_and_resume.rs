//! A job that is killed and resumed.
//!
//! `load <table> <batch_size>` inserts rows `(id, name)` with ids 0, 1, 2, ... forever, printing
//! its process id first; kill it (`kill -9`) whenever you like. `resume <table> <process-id>` then
//! imports every file the killed job had complete on S3, exactly once, and reports what the crash
//! lost (the files still being written). The integration test `resume` drives it with SIGKILL.
//!
//! ```sh
//! scripts/services.sh start && eval "$(scripts/services.sh env)"
//! scripts/services.sh psql -c 'CREATE TABLE public.crash_demo (id bigint, name text)'
//! cargo run --example crash_and_resume -- load public.crash_demo 10000 &   # then: kill -9 %1
//! cargo run --example crash_and_resume -- resume public.crash_demo <process-id>
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

#[path = "common.rs"]
mod common;

use std::io::Write;

use relyt_sdk::{BulkProcessor, RelytRecord};

#[derive(RelytRecord)]
struct Row {
    id: i64,
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: crash_and_resume load <table> <batch_size> | resume <table> <process-id>";
    let (mode, table) = match (args.first(), args.get(1)) {
        (Some(mode), Some(table)) => (mode.as_str(), table.clone()),
        _ => return Err(usage.into()),
    };
    let builder = BulkProcessor::<Row>::builder()
        .database_url(common::database_url())
        .table(table)
        .s3(common::s3("examples/crash"))
        .concurrency(1)
        .keep_staged_files(true);
    match mode {
        "load" => {
            let batch_size: u64 = args.get(2).ok_or(usage)?.parse()?;
            let processor = builder.batch_size(batch_size).build().await?;
            println!("process {}", processor.process_id());
            std::io::stdout().flush()?;
            let mut id = 0i64;
            loop {
                let rows: Vec<Row> = (id..id + 1000)
                    .map(|i| Row {
                        id: i,
                        name: format!("row {i}"),
                    })
                    .collect();
                processor.insert(&rows).await?;
                id += 1000;
                println!("inserted {id}");
                std::io::stdout().flush()?;
            }
        }
        "resume" => {
            let id = args.get(2).ok_or(usage)?.parse()?;
            let processor = builder.resume(id).build().await?;
            let report = processor.resumed().unwrap_or_default();
            let stats = processor.shutdown().await?;
            println!(
                "resumed {}: {} files recovered ({} rows, {} rejected), {} files lost; {:?}",
                stats.process_id,
                report.files_recovered,
                report.rows_recovered,
                report.rows_rejected,
                report.files_lost,
                stats
            );
            Ok(())
        }
        _ => Err(usage.into()),
    }
}
