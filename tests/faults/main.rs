//! Fault tests: PostgreSQL killed and restarted while files import, the S3 server down during
//! uploads, and secrets kept out of logs, errors and `Debug` output.
//!
//! These tests stop and start servers, so they run against services of their own, started here
//! with `scripts/services.sh` in a separate state directory and on separate ports
//! (`RELYT_FAULTS_PG_PORT`, default 25499; `RELYT_FAULTS_S3_PORT`, default 29099), and one at a
//! time. They need what `scripts/services.sh start` needs (PostgreSQL 15 and s3s-fs installed,
//! which `scripts/test.sh` ensures).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use relyt_sdk::{BulkProcessor, ImportMethod, RelytRecord, S3Config};
use sqlx::Connection;

/// The fault services: their settings, started once per run.
struct Services {
    script: PathBuf,
    env: Vec<(String, String)>,
}

impl Services {
    fn get() -> &'static Services {
        static SERVICES: OnceLock<Services> = OnceLock::new();
        SERVICES.get_or_init(|| {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
            let pg = std::env::var("RELYT_FAULTS_PG_PORT").unwrap_or_else(|_| "25499".into());
            let s3 = std::env::var("RELYT_FAULTS_S3_PORT").unwrap_or_else(|_| "29099".into());
            let env = vec![
                (
                    "RELYT_SERVICES_DIR".to_owned(),
                    "/tmp/relyt-sdk-faults".to_owned(),
                ),
                ("RELYT_PG_PORT".to_owned(), pg),
                ("RELYT_S3_PORT".to_owned(), s3),
            ];
            let services = Services { script, env };
            services.run("start");
            services
        })
    }

    fn run(&self, what: &str) {
        let status = Command::new("bash")
            .arg(&self.script)
            .arg(what)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status()
            .unwrap_or_else(|e| panic!("cannot run scripts/services.sh {what}: {e}"));
        assert!(status.success(), "scripts/services.sh {what} failed");
    }

    fn var(&self, name: &str) -> String {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg("env")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("services.sh env");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.trim_matches('\'').to_owned())
            .unwrap_or_else(|| panic!("{name} missing from services.sh env"))
    }

    fn database_url(&self) -> String {
        self.var("RELYT_TEST_DATABASE_URL")
    }

    fn s3(&self, prefix: &str) -> S3Config {
        S3Config::new(self.var("RELYT_TEST_S3_BUCKET"))
            .with_endpoint(self.var("RELYT_TEST_S3_ENDPOINT"))
            .with_region(self.var("RELYT_TEST_S3_REGION"))
            .with_credentials(
                self.var("RELYT_TEST_S3_ACCESS_KEY"),
                self.var("RELYT_TEST_S3_SECRET_KEY"),
            )
            .with_prefix(prefix)
    }
}

/// One fault test at a time: they stop shared servers.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

#[derive(RelytRecord)]
struct Row {
    id: i64,
    name: String,
}

fn rows(from: i64, to: i64) -> Vec<Row> {
    (from..to)
        .map(|id| Row {
            id,
            name: format!("row {id}"),
        })
        .collect()
}

/// A fresh table in a schema of its own on the fault services.
async fn table(services: &Services, name: &str) -> (sqlx::PgConnection, String) {
    let mut conn = sqlx::PgConnection::connect(&services.database_url())
        .await
        .expect("connect");
    let schema = format!("f_{name}_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.t (id bigint, name text)"
    )))
    .execute(&mut conn)
    .await
    .expect("create table");
    (conn, format!("{schema}.t"))
}

async fn count(services: &Services, table: &str) -> (i64, i64) {
    let mut conn = sqlx::PgConnection::connect(&services.database_url())
        .await
        .expect("connect");
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT id) FROM {table}"
    )))
    .fetch_one(&mut conn)
    .await
    .expect("count")
}

/// PostgreSQL killed (immediate mode) while files import, down for three seconds, started again:
/// every row arrives exactly once, and none counts as a bad record.
#[tokio::test]
async fn database_restart_during_imports() {
    let _serial = serial().await;
    let services = Services::get();
    let (conn, table) = table(services, "pgrestart").await;
    drop(conn);
    for method in [ImportMethod::ClientCopy, ImportMethod::ServerPull] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("TRUNCATE {table}")))
            .execute(
                &mut sqlx::PgConnection::connect(&services.database_url())
                    .await
                    .expect("c"),
            )
            .await
            .expect("truncate");
        let processor = BulkProcessor::<Row>::builder()
            .database_url(services.database_url())
            .table(table.clone())
            .s3(services.s3("faults/pg"))
            .import_method(method)
            .batch_size(20_000)
            .concurrency(2)
            .build()
            .await
            .expect("build");
        processor.insert(&rows(0, 100_000)).await.expect("insert");
        // Files are being imported now.
        services.run("pg-kill");
        // Rows keep coming while the database is down: they are staged and wait (insert blocks
        // once max_pending_files wait for import: backpressure).
        let inserting = {
            let processor = processor.clone();
            tokio::spawn(async move { processor.insert(&rows(100_000, 200_000)).await })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        services.run("pg-start");
        inserting.await.expect("task").expect("insert while down");
        let stats = processor
            .shutdown()
            .await
            .expect("shutdown after the restart");
        assert_eq!(stats.rows_imported, 200_000, "{method:?} {stats:?}");
        assert_eq!(stats.rows_rejected, 0, "faults are not bad records");
        assert_eq!(
            count(services, &table).await,
            (200_000, 200_000),
            "{method:?}"
        );
    }
}

/// The S3 server down for several seconds during uploads: retried, nothing lost.
#[tokio::test]
async fn s3_outage_during_uploads() {
    let _serial = serial().await;
    let services = Services::get();
    let (_conn, table) = table(services, "s3down").await;
    let processor = BulkProcessor::<Row>::builder()
        .database_url(services.database_url())
        .table(table.clone())
        .s3(services.s3("faults/s3"))
        .batch_size(20_000)
        .build()
        .await
        .expect("build");
    processor.insert(&rows(0, 50_000)).await.expect("insert");
    services.run("s3-stop");
    let inserting = {
        let processor = processor.clone();
        tokio::spawn(async move { processor.insert(&rows(50_000, 150_000)).await })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    services.run("s3-start");
    inserting
        .await
        .expect("task")
        .expect("insert during the outage");
    let stats = processor.shutdown().await.expect("shutdown");
    assert_eq!(stats.rows_imported, 150_000, "{stats:?}");
    assert_eq!(count(services, &table).await, (150_000, 150_000));
}

/// A writer that keeps everything tracing prints.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

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

/// With every log at trace level captured, no secret key, database password, presigned-URL
/// signature or credential appears in logs, errors or `Debug` output, also when the server
/// fails to fetch a staged object.
#[tokio::test(flavor = "current_thread")]
async fn secrets_stay_out_of_logs_errors_and_debug() {
    let _serial = serial().await;
    let services = Services::get();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let c = captured.clone();
            move || c.clone()
        })
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let (_conn, table) = table(services, "secrets").await;
    let secret = services.var("RELYT_TEST_S3_SECRET_KEY");
    // Trust authentication ignores the password, but the SDK must never show it.
    let password = "Pw-3xTr4-s3cr3t";
    let url = services
        .database_url()
        .replacen("postgres@", &format!("postgres:{password}@"), 1);
    let processor = BulkProcessor::<Row>::builder()
        .database_url(url)
        .table(table.clone())
        .s3(services.s3("faults/secrets"))
        .import_method(ImportMethod::ServerPull)
        .build()
        .await
        .expect("build");
    processor.insert(&rows(0, 1000)).await.expect("insert");
    processor.flush().await.expect("flush");
    let mut shown = format!("{processor:?} {:?}", processor.stats());

    // A staged object that vanished: the server's curl fails and PostgreSQL echoes its command
    // line, presigned URL included.
    let stager = relyt_sdk::Stager::new(&services.s3("faults/secrets"))
        .await
        .expect("stager");
    let object = relyt_sdk::StagedObject {
        key: "faults/secrets/missing.csv".into(),
        size: 0,
    };
    let mut conn = sqlx::PgConnection::connect(&services.database_url())
        .await
        .expect("connect");
    let err = relyt_sdk::import::postgres::server_pull(
        &mut conn,
        &stager,
        &object,
        &table.parse().expect("table"),
        &["id", "name"],
        Duration::from_secs(60),
    )
    .await
    .expect_err("missing object");
    shown.push_str(&format!("{err} {err:?}"));
    processor.shutdown().await.expect("shutdown");

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(
        logs.contains("bulk processor started"),
        "logs were captured"
    );
    for (what, text) in [("logs", &logs), ("errors and Debug", &shown)] {
        assert!(
            !text.contains(&secret),
            "the S3 secret key appears in {what}"
        );
        assert!(
            !text.contains(password),
            "the database password appears in {what}"
        );
        let leak = text.lines().find(|l| l.contains("X-Amz-Signature="));
        assert!(
            leak.is_none(),
            "a presigned signature appears in {what}: {leak:?}"
        );
    }
    // The access key id is not a secret, and the AWS SDK's own signer logs its canonical request
    // (which names it) at trace level; our errors and Debug output leave it out all the same.
    assert!(
        !shown.contains("X-Amz-Credential="),
        "a presigned credential appears in errors"
    );
}
