//! Bad rows: data errors are narrowed to the offending records, which are rejected (stored with
//! file, line, raw record, SQLSTATE and message) while the rest of the file loads; past the
//! budget the job fails and no file is half imported.

use std::collections::BTreeSet;

use relyt_sdk::{BulkProcessor, ConflictMode, Error, ImportMethod, RelytRecord};

use crate::common::{TestDb, s3_config};

#[derive(Debug, Clone, RelytRecord)]
struct Item {
    #[relyt(key)]
    id: i64,
    /// Loaded into an `int` column: "x<id>" is a type error (22P02).
    qty: String,
    /// `NOT NULL` (23502).
    name: Option<String>,
    /// `CHECK (score >= 0)` (23514).
    score: i32,
    /// `varchar(5)`: longer is 22001.
    code: String,
}

const ROWS: i64 = 200_000;

/// 50 bad rows of four kinds, spread over the load; returns the rows and the bad ids.
fn items() -> (Vec<Item>, BTreeSet<i64>) {
    let mut bad = BTreeSet::new();
    let rows = (0..ROWS)
        .map(|id| {
            let mut item = Item {
                id,
                qty: (id % 100).to_string(),
                name: Some(format!("item {id}")),
                score: (id % 50) as i32,
                code: "ok".into(),
            };
            // Every 4000th row is bad, cycling through the kinds.
            if id % 4000 == 1234 {
                bad.insert(id);
                match (id / 4000) % 4 {
                    0 => item.qty = format!("x{id}"),
                    1 => item.name = None,
                    2 => item.score = -1,
                    _ => item.code = "toolong".into(),
                }
            }
            item
        })
        .collect();
    (rows, bad)
}

const DDL: &str = "(id bigint{pk}, qty int, name text NOT NULL, score int CHECK (score >= 0), \
                   code varchar(5))";

async fn load(
    db: &TestDb,
    table: &str,
    method: ImportMethod,
    conflict: ConflictMode,
    budget: u64,
) -> (relyt_sdk::Result<relyt_sdk::Stats>, uuid::Uuid) {
    let processor = BulkProcessor::<Item>::builder()
        .database_url(crate::common::database_url())
        .table(format!("\"{}\".{table}", db.schema))
        .s3(s3_config("badrows"))
        .import_method(method)
        .conflict(conflict)
        .concurrency(2)
        .batch_size(50_000)
        .max_error_records(budget)
        .keep_staged_files(true)
        .build()
        .await
        .expect("build");
    let (rows, _) = items();
    let mut result = Ok(());
    for chunk in rows.chunks(10_000) {
        result = processor.insert(chunk).await;
        if result.is_err() {
            break;
        }
    }
    let id = processor.process_id();
    match result {
        Ok(()) => (processor.shutdown().await, id),
        Err(e) => (Err(e), id),
    }
}

async fn rejected_ids(db: &mut TestDb, process: uuid::Uuid) -> Vec<(i64, i64, String, String)> {
    type Stored = (
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT file_no, line_no, raw_record, sqlstate, message \
             FROM relyt_sys.relyt_loader_reject WHERE process_id = $1",
    )
    .bind(process.to_string())
    .fetch_all(&mut db.conn)
    .await
    .expect("rejects");
    rows.into_iter()
        .map(|(file, line, raw, state, message)| {
            let raw = raw.expect("raw record kept");
            let id: i64 = raw
                .split(',')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("id first");
            assert!(
                file.is_some() && line.unwrap_or(0) >= 1,
                "file and line kept: {message}"
            );
            (id, line.unwrap_or(0), state.expect("sqlstate"), message)
        })
        .collect()
}

/// Within budget: exactly the 50 bad rows are rejected, with their lines; the other 199,950 load.
#[tokio::test]
async fn bad_rows_are_rejected_and_the_rest_loads() {
    for (method, conflict, pk) in [
        (ImportMethod::ClientCopy, ConflictMode::Insert, ""),
        (
            ImportMethod::ServerPull,
            ConflictMode::Update,
            " PRIMARY KEY",
        ),
    ] {
        let mut db = TestDb::new("badrows").await;
        db.exec(&format!("CREATE TABLE t {}", DDL.replace("{pk}", pk)))
            .await;
        let (result, process) = load(&db, "t", method, conflict, 100).await;
        let stats = result.unwrap_or_else(|e| panic!("{method:?}: {e}"));
        let (_, bad) = items();
        assert_eq!(bad.len(), 50);
        assert_eq!(stats.rows_rejected, 50, "{stats:?}");
        assert_eq!(stats.rows_imported, ROWS as u64 - 50, "{stats:?}");
        assert_eq!(stats.rows_pending, 0);

        let rejects = rejected_ids(&mut db, process).await;
        let got: BTreeSet<i64> = rejects.iter().map(|r| r.0).collect();
        assert_eq!(got, bad, "{method:?} rejects exactly the bad rows");
        assert_eq!(rejects.len(), 50, "each once");
        let states: BTreeSet<&str> = rejects.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(
            states,
            BTreeSet::from(["22P02", "23502", "23514", "22001"]),
            "{rejects:?}"
        );
        if conflict == ConflictMode::Insert {
            // One lane, files of 50,000 rows in id order: the line is the row's place in its file.
            for (id, line, _, _) in &rejects {
                assert_eq!(*line, id % 50_000 + 1, "line of id {id}");
            }
        }
        for (_, _, _, message) in &rejects {
            assert!(
                !message.contains("item "),
                "no row data in messages: {message}"
            );
        }

        let (count, with_bad): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE id % 4000 = 1234) FROM t")
                .fetch_one(&mut db.conn)
                .await
                .expect("count");
        assert_eq!((count, with_bad), (ROWS - 50, 0), "{method:?}");
        let job: (i64, i64, i64) = sqlx::query_as(
            "SELECT rows_accepted, rows_imported, rows_rejected FROM relyt_sys.relyt_loader_job \
             WHERE process_id = $1",
        )
        .bind(process.to_string())
        .fetch_one(&mut db.conn)
        .await
        .expect("job");
        assert_eq!(job, (ROWS, ROWS - 50, 50));
        db.drop().await;
    }
}

/// Past the budget the job fails with an error naming the table, the count and the first lines;
/// files already imported stay, the failing file is not half imported.
#[tokio::test]
async fn past_the_budget_the_job_fails_without_half_files() {
    let mut db = TestDb::new("budget").await;
    db.exec(&format!("CREATE TABLE t {}", DDL.replace("{pk}", "")))
        .await;
    let (result, process) =
        load(&db, "t", ImportMethod::ClientCopy, ConflictMode::Insert, 10).await;
    let err = result.expect_err("over budget");
    let text = err.to_string();
    assert!(
        matches!(err, Error::Failed(_) | Error::TooManyRejects { .. }),
        "{err:?}"
    );
    assert!(
        text.contains("records rejected while loading") && text.contains("\"t\""),
        "{text}"
    );
    assert!(
        text.contains("max_error_records = 10") && text.contains("line "),
        "{text}"
    );

    // Every file is either wholly imported (less its rejects) or not at all.
    let files: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT file_no, status, num_records, rows_imported FROM relyt_sys.relyt_loader_file \
         WHERE process_id = $1 ORDER BY file_no",
    )
    .bind(process.to_string())
    .fetch_all(&mut db.conn)
    .await
    .expect("files");
    assert!(
        files.iter().any(|f| f.1 != "IMPORTED"),
        "some file was not imported: {files:?}"
    );
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
        .fetch_one(&mut db.conn)
        .await
        .expect("count");
    let imported: i64 = files
        .iter()
        .filter(|f| f.1 == "IMPORTED")
        .map(|f| f.3)
        .sum();
    assert_eq!(
        count, imported,
        "the table holds exactly the imported files' rows: {files:?}"
    );
    for (no, status, _, _) in &files {
        let lo = (no - 1) * 50_000;
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t WHERE id >= $1 AND id < $2")
            .bind(lo)
            .bind(lo + 50_000)
            .fetch_one(&mut db.conn)
            .await
            .expect("range");
        if status == "IMPORTED" {
            assert!(n > 49_000, "file {no} wholly imported");
        } else {
            assert_eq!(n, 0, "file {no} ({status}) is not half imported");
        }
    }
    assert_eq!(db.job_status(process).await, "FAILED");
    db.drop().await;
}

/// A foreign key is checked at the end of a COPY, so its error names no line: the file is
/// bisected and exactly the rows without a parent are rejected.
#[tokio::test]
async fn errors_without_a_line_are_bisected() {
    #[derive(RelytRecord)]
    struct Child {
        id: i64,
        parent: i64,
    }
    let mut db = TestDb::new("fk").await;
    db.exec("CREATE TABLE parent (id bigint PRIMARY KEY)").await;
    db.exec("INSERT INTO parent SELECT g FROM generate_series(0, 99) g")
        .await;
    db.exec("CREATE TABLE child (id bigint, parent bigint REFERENCES parent)")
        .await;
    let processor = BulkProcessor::<Child>::builder()
        .database_url(crate::common::database_url())
        .table(format!("\"{}\".child", db.schema))
        .s3(s3_config("fk"))
        .max_error_records(10)
        .build()
        .await
        .expect("build");
    // Rows 777, 12345 and 29999 point at parents that do not exist.
    let orphans = [777i64, 12_345, 29_999];
    let rows: Vec<Child> = (0..30_000)
        .map(|id| Child {
            id,
            parent: if orphans.contains(&id) {
                1000 + id
            } else {
                id % 100
            },
        })
        .collect();
    processor.insert(&rows).await.expect("insert");
    let stats = processor.shutdown().await.expect("shutdown");
    assert_eq!(
        (stats.rows_imported, stats.rows_rejected),
        (29_997, 3),
        "{stats:?}"
    );
    let rejected: Vec<(i64, String)> = sqlx::query_as(
        "SELECT line_no, sqlstate FROM relyt_sys.relyt_loader_reject WHERE process_id = $1 \
         ORDER BY line_no",
    )
    .bind(processor.process_id().to_string())
    .fetch_all(&mut db.conn)
    .await
    .expect("rejects");
    let want: Vec<(i64, String)> = orphans
        .iter()
        .map(|id| (id + 1, "23503".to_owned()))
        .collect();
    assert_eq!(rejected, want);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM child")
        .fetch_one(&mut db.conn)
        .await
        .expect("count");
    assert_eq!(n, 29_997);
    db.drop().await;
}
