//! Shared set-up: the services from the environment, and a schema per test.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};

/// The database URL from `RELYT_TEST_DATABASE_URL`, or a panic that says how to get one.
pub(crate) fn database_url() -> String {
    match std::env::var("RELYT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "RELYT_TEST_DATABASE_URL is not set: the integration tests need a real PostgreSQL 15 \
             and S3 server. Start them with `scripts/services.sh start` and load their settings \
             with `eval \"$(scripts/services.sh env)\"`, or run `scripts/test.sh`, which does both."
        ),
    }
}

/// A connection whose `search_path` is a fresh schema of its own, dropped by [`TestDb::drop`].
pub(crate) struct TestDb {
    pub(crate) conn: PgConnection,
    pub(crate) schema: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// Connects and creates a schema named after the test, unique within this run.
    pub(crate) async fn new(test: &str) -> TestDb {
        let url = database_url();
        let mut conn = PgConnection::connect(&url).await.unwrap_or_else(|e| {
            panic!(
                "cannot connect to RELYT_TEST_DATABASE_URL ({e}); is the database running? \
                 `scripts/services.sh start` starts it"
            )
        });
        let schema = format!(
            "t_{}_{}_{}",
            test,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\"; \
             SET search_path TO \"{schema}\", public"
        )))
        .await
        .expect("create test schema");
        TestDb { conn, schema }
    }

    /// Runs SQL (test-owned text only).
    pub(crate) async fn exec(&mut self, sql: &str) {
        self.conn
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Loads CSV bytes with `COPY table FROM STDIN (FORMAT csv)`.
    pub(crate) async fn copy_csv(&mut self, table: &str, csv: &[u8]) -> Result<u64, sqlx::Error> {
        let mut copy = self
            .conn
            .copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT csv)"))
            .await?;
        copy.send(csv).await?;
        copy.finish().await
    }

    /// `count(*)` and `sum(id)` of a table: a row count and a checksum.
    pub(crate) async fn count_sum(&mut self, table: &str) -> (i64, i64) {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), coalesce(sum(id), 0)::bigint FROM {table}"
        )))
        .fetch_one(&mut self.conn)
        .await
        .expect("count")
    }

    /// The status of a job in `relyt_sys.relyt_loader_job`.
    pub(crate) async fn job_status(&mut self, process_id: uuid::Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM relyt_sys.relyt_loader_job WHERE process_id = $1")
            .bind(process_id.to_string())
            .fetch_one(&mut self.conn)
            .await
            .expect("job")
    }

    /// Drops the schema.
    pub(crate) async fn drop(mut self) {
        let schema = self.schema.clone();
        self.exec(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await;
    }
}

/// The S3 settings from the `RELYT_TEST_S3_*` variables, with a prefix unique to this test.
pub(crate) fn s3_config(test: &str) -> relyt_sdk::S3Config {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: start the services with `scripts/services.sh start` and load \
                 their settings with `eval \"$(scripts/services.sh env)\"` (scripts/test.sh does both)"
            )
        })
    };
    relyt_sdk::S3Config::new(var("RELYT_TEST_S3_BUCKET"))
        .with_endpoint(var("RELYT_TEST_S3_ENDPOINT"))
        .with_region(var("RELYT_TEST_S3_REGION"))
        .with_credentials(
            var("RELYT_TEST_S3_ACCESS_KEY"),
            var("RELYT_TEST_S3_SECRET_KEY"),
        )
        .with_prefix(format!(
            "it/{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
}
