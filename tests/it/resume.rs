//! Crash and resume: a child process loading rows is killed with SIGKILL while files wait for
//! import; `resume` in this process (twice at once) imports each of them exactly once.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use relyt_sdk::{BulkProcessor, RelytRecord};
use sqlx::Connection;

use crate::common::{TestDb, database_url, s3_config};

#[derive(RelytRecord)]
struct Row {
    id: i64,
    name: String,
}

const BATCH: i64 = 5_000;

/// The example binary that loads until killed (built by `cargo test --all-targets`).
fn child_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/it-<hash> -> target/debug/examples/crash_and_resume
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("crash_and_resume"))
        .expect("target dir");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --example crash_and_resume` (scripts/test.sh \
         builds every target)",
        path.display()
    );
    path
}

#[tokio::test]
async fn killed_job_resumes_exactly_once() {
    let mut db = TestDb::new("resume").await;
    db.exec("CREATE TABLE t (id bigint, name text)").await;
    let table = format!("\"{}\".t", db.schema);

    // Hold the table so the child's imports wait: its files pile up FROZEN.
    let mut blocker = sqlx::PgConnection::connect(&database_url())
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut blocker)
    .await
    .expect("lock");

    let mut child = Command::new(child_binary())
        .args(["load", &table, &BATCH.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let process: uuid::Uuid = first
        .strip_prefix("process ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));

    // Wait until at least three files are FROZEN (complete on S3, not imported).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (frozen,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM relyt_sys.relyt_loader_file \
             WHERE process_id = $1 AND status IN ('FROZEN', 'IMPORTING')",
        )
        .bind(process.to_string())
        .fetch_one(&mut db.conn)
        .await
        .expect("files");
        if frozen >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child froze no files"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let frozen: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT file_no, num_records FROM relyt_sys.relyt_loader_file \
         WHERE process_id = $1 AND status IN ('FROZEN', 'IMPORTING') ORDER BY file_no",
    )
    .bind(process.to_string())
    .fetch_all(&mut db.conn)
    .await
    .expect("frozen files");
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");

    // Two processors resume the same job at once.
    let resume = || {
        BulkProcessor::<Row>::builder()
            .database_url(database_url())
            .table(table.clone())
            .s3(s3_config("resume"))
            .resume(process)
            .build()
    };
    let (a, b) = tokio::join!(resume(), resume());
    let (a, b) = (a.expect("resume a"), b.expect("resume b"));
    let (ra, rb) = (a.resumed().expect("report"), b.resumed().expect("report"));
    a.shutdown().await.expect("shutdown a");
    b.shutdown().await.expect("shutdown b");

    assert!(frozen.len() >= 3, "{frozen:?}");
    let want_rows: i64 = frozen.iter().map(|f| f.1).sum();
    assert_eq!(
        ra.rows_recovered + rb.rows_recovered,
        want_rows as u64,
        "{ra:?} {rb:?}"
    );
    // One lane, files in id order: file n holds ids [(n-1)*BATCH, n*BATCH).
    let want_ids: BTreeSet<i64> = frozen
        .iter()
        .flat_map(|(no, _)| ((no - 1) * BATCH)..(no * BATCH))
        .collect();
    let want_sum: i64 = want_ids.iter().sum();
    let (count, distinct, sum): (i64, i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), count(DISTINCT id), sum(id)::bigint FROM t")
            .fetch_one(&mut db.conn)
            .await
            .expect("count");
    assert_eq!(count, want_rows, "each frozen row once");
    assert_eq!(distinct, count, "no row twice");
    assert_eq!(sum, Some(want_sum), "exactly the frozen files' rows");
    assert_eq!(db.job_status(process).await, "COMPLETED");
    db.drop().await;
}

/// Resuming a job that does not exist, or for another table, is a clear error.
#[tokio::test]
async fn resume_checks_the_job() {
    let mut db = TestDb::new("resumecheck").await;
    db.exec("CREATE TABLE t (id bigint, name text)").await;
    let err = BulkProcessor::<Row>::builder()
        .database_url(database_url())
        .table(format!("\"{}\".t", db.schema))
        .s3(s3_config("resume"))
        .resume(uuid::Uuid::new_v4())
        .build()
        .await
        .expect_err("no such job");
    assert!(err.to_string().contains("to resume"), "{err}");
    db.drop().await;
}
