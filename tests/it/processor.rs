//! The BulkProcessor end to end: real PostgreSQL, real S3, both import methods.

use std::collections::HashMap;
use std::time::Duration;

use relyt_sdk::{BulkProcessor, ConflictMode, Error, ImportMethod, RelytRecord};

use crate::common::{TestDb, s3_config};

/// The reference row, keyed.
#[derive(Debug, Clone, RelytRecord)]
struct Row {
    #[relyt(key)]
    id: i64,
    name: String,
    version: i32,
}

/// The same columns without a key (for tables without one).
#[derive(Debug, Clone, RelytRecord)]
struct Plain {
    id: i64,
    name: Option<String>,
    version: i32,
}

fn rows(range: std::ops::Range<i64>, version: i32) -> Vec<Row> {
    range
        .map(|id| Row {
            id,
            name: format!("row \"{id}\", v{version}"),
            version,
        })
        .collect()
}

fn builder<T: RelytRecord + Send + Sync + 'static>(
    db: &TestDb,
    table: &str,
    test: &str,
) -> relyt_sdk::Builder<T> {
    BulkProcessor::<T>::builder()
        .database_url(crate::common::database_url())
        .table(format!("\"{}\".{table}", db.schema))
        .s3(s3_config(test))
}

/// Rows from several tasks, several files, both methods, one and four importers: every row lands
/// once, the stats add up, the checkpoint says COMPLETED, the staged objects are gone.
#[tokio::test]
async fn loads_every_row_once_with_each_method_and_concurrency() {
    for (method, concurrency) in [
        (ImportMethod::ClientCopy, 1),
        (ImportMethod::ServerPull, 4),
        (ImportMethod::ClientCopy, 4),
    ] {
        let mut db = TestDb::new("load").await;
        db.exec("CREATE TABLE t (id bigint, name text, version int)")
            .await;
        let processor = builder::<Plain>(&db, "t", "load")
            .import_method(method)
            .concurrency(concurrency)
            .batch_size(7_000)
            .build()
            .await
            .expect("build");
        let mut tasks = Vec::new();
        for task in 0..4i64 {
            let p = processor.clone();
            tasks.push(tokio::spawn(async move {
                for chunk in 0..10i64 {
                    let batch: Vec<Plain> = (0..1000)
                        .map(|i| Plain {
                            id: task * 10_000 + chunk * 1000 + i,
                            name: (i % 3 != 0).then(|| format!("n{i}")),
                            version: 1,
                        })
                        .collect();
                    p.insert(&batch).await.expect("insert");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let stats = processor.flush().await.expect("flush");
        assert_eq!(stats.rows_accepted, 40_000, "{method:?}");
        assert_eq!(stats.rows_imported, 40_000, "{method:?} {stats:?}");
        assert_eq!(stats.rows_pending, 0);
        assert!(stats.files_imported >= 6, "{stats:?}");
        let want_sum: i64 = (0..4i64)
            .flat_map(|t| (0..10_000i64).map(move |i| t * 10_000 + i))
            .sum();
        assert_eq!(db.count_sum("t").await, (40_000, want_sum), "{method:?}");
        let nulls: i64 = sqlx::query_scalar("SELECT count(*) FROM t WHERE name IS NULL")
            .fetch_one(&mut db.conn)
            .await
            .expect("nulls");
        assert_eq!(nulls, 4 * 10 * 334);

        let id = processor.process_id().to_string();
        let stats = processor.shutdown().await.expect("shutdown");
        assert_eq!(stats.rows_imported, 40_000);
        // The seed's monitoring queries still work on relyt_sys.relyt_loader_checkpoint.
        let (status, files_total, files_imported, errors): (String, i32, i32, i32) =
            sqlx::query_as(
                "SELECT status, files_total, files_imported, error_records \
             FROM relyt_sys.relyt_loader_checkpoint WHERE process_id = $1",
            )
            .bind(&id)
            .fetch_one(&mut db.conn)
            .await
            .expect("checkpoint");
        assert_eq!((status.as_str(), errors), ("COMPLETED", 0));
        assert_eq!(files_total, files_imported);
        assert_eq!(files_total as u64, stats.files_imported);
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT file->>'s3_key' FROM relyt_sys.relyt_loader_checkpoint, \
             jsonb_array_elements(file_details) AS file WHERE process_id = $1 \
             AND file->>'status' = 'IMPORTED'",
        )
        .bind(&id)
        .fetch_all(&mut db.conn)
        .await
        .expect("file details");
        assert_eq!(keys.len() as u64, stats.files_imported);
        let stager = relyt_sdk::Stager::new(&s3_config("load"))
            .await
            .expect("stager");
        for key in &keys {
            assert!(key.contains(&id), "{key} is under the process id");
            assert!(
                stager.get(key).await.is_err(),
                "{key} was deleted after import"
            );
        }
        db.drop().await;
    }
}

/// A key inserted several times, in one file and across files, with four importers: the row
/// inserted last wins. With DoNothing, the first one (and a row already stored) wins.
#[tokio::test]
async fn upserts_are_last_write_wins_across_files_and_importers() {
    for (method, conflict) in [
        (ImportMethod::ClientCopy, ConflictMode::Update),
        (ImportMethod::ServerPull, ConflictMode::Update),
        (ImportMethod::ClientCopy, ConflictMode::DoNothing),
    ] {
        let mut db = TestDb::new("upsert").await;
        db.exec("CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL, version int)")
            .await;
        db.exec("INSERT INTO t VALUES (0, 'stored', 0)").await;
        let processor = builder::<Row>(&db, "t", "upsert")
            .import_method(method)
            .conflict(conflict)
            .concurrency(4)
            .batch_size(1_500)
            .build()
            .await
            .expect("build");
        // Versions 1..=5 of keys 0..2000, each version in its own insert call; versions 4 and 5
        // of the even keys again inside one call, so one file holds both.
        for version in 1..=3 {
            processor
                .insert(&rows(0..2000, version))
                .await
                .expect("insert");
        }
        let mut both: Vec<Row> = Vec::new();
        for id in (0..2000).step_by(2) {
            both.extend(rows(id..id + 1, 4));
            both.extend(rows(id..id + 1, 5));
        }
        processor.insert(&both).await.expect("insert");
        processor.shutdown().await.expect("shutdown");

        let got: Vec<(i64, i32)> = sqlx::query_as("SELECT id, version FROM t ORDER BY id")
            .fetch_all(&mut db.conn)
            .await
            .expect("select");
        assert_eq!(got.len(), 2000);
        for (id, version) in got {
            let want = match conflict {
                ConflictMode::DoNothing if id == 0 => 0,
                ConflictMode::DoNothing => 1,
                _ if id % 2 == 0 => 5,
                _ => 3,
            };
            assert_eq!(version, want, "key {id} with {method:?} {conflict:?}");
        }
        db.drop().await;
    }
}

/// A file freezes by age: rows inserted and left alone arrive without a flush.
#[tokio::test]
async fn files_freeze_by_age() {
    let mut db = TestDb::new("age").await;
    db.exec("CREATE TABLE t (id bigint primary key, name text, version int)")
        .await;
    let processor = builder::<Row>(&db, "t", "age")
        .max_file_age(Duration::from_millis(300))
        .build()
        .await
        .expect("build");
    processor.insert(&rows(0..10, 1)).await.expect("insert");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while processor.stats().rows_imported < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not imported by age: {:?}",
            processor.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(db.count_sum("t").await, (10, 45));
    processor.shutdown().await.expect("shutdown");
    db.drop().await;
}

/// With one file allowed to wait, the processor never holds more files than that plus its open
/// ones, however fast rows come.
#[tokio::test]
async fn backpressure_bounds_files_in_flight() {
    let mut db = TestDb::new("backpressure").await;
    db.exec("CREATE TABLE t (id bigint, name text, version int)")
        .await;
    let processor = builder::<Plain>(&db, "t", "backpressure")
        .batch_size(500)
        .max_pending_files(1)
        .concurrency(1)
        .build()
        .await
        .expect("build");
    let watcher = {
        let p = processor.clone();
        tokio::spawn(async move {
            let mut most = 0;
            for _ in 0..4000 {
                let s = p.stats();
                most = most.max(s.files_open + s.files_waiting);
                if s.rows_imported >= 20_000 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            most
        })
    };
    for chunk in 0..40i64 {
        let batch: Vec<Plain> = (0..500)
            .map(|i| Plain {
                id: chunk * 500 + i,
                name: None,
                version: 0,
            })
            .collect();
        processor.insert(&batch).await.expect("insert");
    }
    processor.shutdown().await.expect("shutdown");
    let most = watcher.await.expect("watcher");
    // One open file plus one waiting (and the one being imported holds its permit too).
    assert!(most <= 2, "files in flight peaked at {most}");
    assert_eq!(db.count_sum("t").await.0, 20_000);
    db.drop().await;
}

/// Schema, table and column names that need quoting.
#[tokio::test]
async fn identifiers_that_need_quoting() {
    #[derive(RelytRecord)]
    struct Odd {
        #[relyt(key, rename = "Select")]
        select: i32,
        #[relyt(rename = "we\"ird col")]
        weird: String,
    }
    let mut db = TestDb::new("quoting").await;
    db.exec("CREATE TABLE \"Mixed.Case\" (\"Select\" int PRIMARY KEY, \"we\"\"ird col\" text)")
        .await;
    let processor = BulkProcessor::<Odd>::builder()
        .database_url(crate::common::database_url())
        .table(format!("\"{}\".\"Mixed.Case\"", db.schema))
        .s3(s3_config("quoting"))
        .import_method(ImportMethod::ServerPull)
        .build()
        .await
        .expect("build");
    let batch: Vec<Odd> = (0..100)
        .map(|i| Odd {
            select: i,
            weird: format!("'{i}'"),
        })
        .collect();
    processor.insert(&batch).await.expect("insert");
    processor.insert(&batch[..10]).await.expect("insert again");
    processor.shutdown().await.expect("shutdown");
    let (n, s): (i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(\"Select\")::bigint FROM \"Mixed.Case\" WHERE \"we\"\"ird col\" LIKE '''%'''",
    )
    .fetch_one(&mut db.conn)
    .await
    .expect("select");
    assert_eq!((n, s), (100, 4950));
    db.drop().await;
}

/// The record is checked against the catalog before anything is staged.
#[tokio::test]
async fn catalog_mismatches_fail_at_build() {
    let mut db = TestDb::new("catalog").await;
    db.exec("CREATE TABLE missing_col (id bigint, name text)")
        .await;
    db.exec("CREATE TABLE wrong_type (id bigint, name text, version boolean)")
        .await;
    db.exec("CREATE TABLE no_key (id bigint, name text, version int)")
        .await;
    let err = builder::<Plain>(&db, "missing_col", "catalog")
        .build()
        .await
        .expect_err("missing");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains("\"version\" does not exist"),
        "{err}"
    );
    let err = builder::<Plain>(&db, "wrong_type", "catalog")
        .build()
        .await
        .expect_err("type");
    assert!(err.to_string().contains("\"version\" is bool"), "{err}");
    let err = builder::<Plain>(&db, "nope", "catalog")
        .build()
        .await
        .expect_err("no table");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = builder::<Plain>(&db, "wrong_type", "catalog")
        .batch_size(0)
        .build()
        .await
        .expect_err("bad setting");
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = builder::<Plain>(&db, "no_key", "catalog")
        .conflict(ConflictMode::Update)
        .build()
        .await
        .expect_err("no key");
    assert!(err.to_string().contains("no primary key"), "{err}");
    db.drop().await;
}

/// After shutdown, insert fails and shutdown returns the same result again.
#[tokio::test]
async fn shutdown_is_idempotent_and_final() {
    let db = TestDb::new("shutdown").await;
    let mut db = db;
    db.exec("CREATE TABLE t (id bigint, name text, version int)")
        .await;
    let processor = builder::<Plain>(&db, "t", "shutdown")
        .build()
        .await
        .expect("build");
    processor
        .insert(&[Plain {
            id: 1,
            name: None,
            version: 1,
        }])
        .await
        .expect("insert");
    let first = processor.shutdown().await.expect("shutdown");
    let second = processor.clone().shutdown().await.expect("again");
    assert_eq!(first, second);
    let err = processor
        .insert(&[Plain {
            id: 2,
            name: None,
            version: 1,
        }])
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert_eq!(db.count_sum("t").await, (1, 1));
    db.drop().await;
}

/// Records the encoder refuses are rejected, stored and counted; past the budget the processor
/// fails with an error that names them.
#[tokio::test]
async fn unencodable_records_count_against_the_budget() {
    let mut db = TestDb::new("rejects").await;
    db.exec("CREATE TABLE t (id bigint, name text, version int)")
        .await;
    let processor = builder::<Plain>(&db, "t", "rejects")
        .max_error_records(2)
        .build()
        .await
        .expect("build");
    let bad = |id| Plain {
        id,
        name: Some("nul\0".into()),
        version: 0,
    };
    let good = |id| Plain {
        id,
        name: None,
        version: 0,
    };
    processor
        .insert(&[good(1), bad(2), good(3), bad(4)])
        .await
        .expect("within budget");
    let stats = processor.flush().await.expect("flush");
    assert_eq!(
        (
            stats.rows_accepted,
            stats.rows_imported,
            stats.rows_rejected
        ),
        (4, 2, 2)
    );
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM relyt_sys.relyt_loader_reject WHERE process_id = $1 AND message LIKE '%NUL%'",
    )
    .bind(processor.process_id().to_string())
    .fetch_one(&mut db.conn)
    .await
    .expect("rejects");
    assert_eq!(stored, 2);
    let err = processor.insert(&[bad(5)]).await.expect_err("over budget");
    let text = err.to_string();
    assert!(
        text.contains("3 records rejected") && text.contains("NUL"),
        "{text}"
    );
    assert!(processor.flush().await.is_err());
    assert!(processor.shutdown().await.is_err());
    assert_eq!(db.job_status(processor.process_id()).await, "FAILED");
    db.drop().await;
}

/// S3 settings read from the database's relyt_sys.loader_config(), as relyt-loader-go does.
#[tokio::test]
async fn s3_settings_from_loader_config() {
    let mut db = TestDb::new("loaderconfig").await;
    db.exec("CREATE TABLE t (id bigint primary key, name text, version int)")
        .await;
    let env = |k: &str| std::env::var(k).expect("service settings");
    let values: HashMap<&str, String> = [
        ("endpoint", env("RELYT_TEST_S3_ENDPOINT")),
        ("region", env("RELYT_TEST_S3_REGION")),
        ("bucket_name", env("RELYT_TEST_S3_BUCKET")),
        ("prefix", "it/loader-config".to_owned()),
        ("access_key", env("RELYT_TEST_S3_ACCESS_KEY")),
        ("secret_key", env("RELYT_TEST_S3_SECRET_KEY")),
    ]
    .into_iter()
    .collect();
    let q = |k: &str| values[k].replace('\'', "''");
    // The function lives in relyt_sys for every test: create it once, under a lock.
    db.exec("CREATE SCHEMA IF NOT EXISTS relyt_sys").await;
    db.exec(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock(4242); \
         DROP FUNCTION IF EXISTS relyt_sys.loader_config(); \
         DROP TYPE IF EXISTS relyt_sys.loader_s3_config; \
         CREATE TYPE relyt_sys.loader_s3_config AS (endpoint text, region text, bucket_name text, \
             prefix text, access_key text, secret_key text); \
         CREATE FUNCTION relyt_sys.loader_config() RETURNS relyt_sys.loader_s3_config \
         LANGUAGE sql IMMUTABLE AS $$ SELECT '{}', '{}', '{}', '{}', '{}', '{}' \
         $$; COMMIT",
        q("endpoint"),
        q("region"),
        q("bucket_name"),
        q("prefix"),
        q("access_key"),
        q("secret_key")
    ))
    .await;
    let processor = BulkProcessor::<Row>::builder()
        .database_url(crate::common::database_url())
        .table(format!("\"{}\".t", db.schema))
        .s3_from_database()
        .build()
        .await
        .expect("build");
    processor.insert(&rows(0..100, 1)).await.expect("insert");
    processor.shutdown().await.expect("shutdown");
    assert_eq!(db.count_sum("t").await, (100, 4950));
    db.drop().await;
}

/// The Relyt method, pointed at plain PostgreSQL (which has no `CREATE EXTERNAL TABLE`): the job
/// fails with the database's error, which names the file and holds no S3 secret; the file stays.
#[tokio::test]
async fn relyt_method_on_postgres_fails_clearly_without_secrets() {
    let mut db = TestDb::new("relytpg").await;
    db.exec("CREATE TABLE t (id bigint primary key, name text, version int)")
        .await;
    let secret = std::env::var("RELYT_TEST_S3_SECRET_KEY").expect("secret");
    let processor = builder::<Row>(&db, "t", "relytpg")
        .import_method(ImportMethod::RelytExternalTable)
        .retry_policy(relyt_sdk::RetryPolicy::NEVER)
        .build()
        .await
        .expect("build");
    processor.insert(&rows(0..10, 1)).await.expect("insert");
    let err = processor
        .flush()
        .await
        .expect_err("PostgreSQL has no external tables");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("through an external table") && text.contains("42601"),
        "{text}"
    );
    assert!(!text.contains(&secret), "{text}");
    // Rows spread over two lanes, so two files: the first to fail fails the job; the other
    // may still be importing. None is imported.
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM relyt_sys.relyt_loader_file WHERE process_id = $1")
            .bind(processor.process_id().to_string())
            .fetch_all(&mut db.conn)
            .await
            .expect("files");
    assert!(statuses.iter().any(|s| s == "ERROR"), "{statuses:?}");
    assert!(!statuses.iter().any(|s| s == "IMPORTED"), "{statuses:?}");
    db.drop().await;
}

/// Dropping the last handle without shutdown warns through tracing and deletes nothing: the
/// frozen files stay staged and in the checkpoint.
#[tokio::test(flavor = "current_thread")]
async fn drop_without_shutdown_warns_and_keeps_staged_files() {
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer({
            let c = captured.clone();
            move || c.clone()
        })
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let mut db = TestDb::new("dropwarn").await;
    // Held so that the frozen file cannot be imported before the drop.
    db.exec("CREATE TABLE t (id bigint, name text, version int)")
        .await;
    let mut blocker = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&crate::common::database_url())
            .await
            .expect("connect")
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; LOCK TABLE \"{}\".t IN ACCESS EXCLUSIVE MODE",
        db.schema
    )))
    .execute(&mut blocker)
    .await
    .expect("lock");
    let processor = builder::<Plain>(&db, "t", "dropwarn")
        .batch_size(100)
        .build()
        .await
        .expect("build");
    let id = processor.process_id().to_string();
    let batch: Vec<Plain> = (0..150)
        .map(|i| Plain {
            id: i,
            name: None,
            version: 0,
        })
        .collect();
    processor.insert(&batch).await.expect("insert");
    // Wait until the first file (100 rows) is complete on S3.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (frozen,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM relyt_sys.relyt_loader_file \
             WHERE process_id = $1 AND status IN ('FROZEN', 'IMPORTING')",
        )
        .bind(&id)
        .fetch_one(&mut db.conn)
        .await
        .expect("files");
        if frozen > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no file froze");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(processor);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(logs.contains("dropped without shutdown()"), "{logs}");
    // An import already under way may still finish (and then remove its object); every file
    // that is not IMPORTED is still staged.
    let files: Vec<(String, String)> = sqlx::query_as(
        "SELECT s3_key, status FROM relyt_sys.relyt_loader_file \
         WHERE process_id = $1 AND status <> 'CREATED'",
    )
    .bind(&id)
    .fetch_all(&mut db.conn)
    .await
    .expect("files");
    assert!(!files.is_empty(), "the frozen file is in the checkpoint");
    let stager = relyt_sdk::Stager::new(&s3_config("dropwarn"))
        .await
        .expect("stager");
    for (key, status) in &files {
        if status != "IMPORTED" {
            assert!(
                stager.get(key).await.is_ok(),
                "{key} ({status}) is still staged"
            );
        }
    }
    db.drop().await;
}
