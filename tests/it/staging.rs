//! Staging on the real S3 server and both PostgreSQL import methods.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use relyt_sdk::import::postgres::{client_copy, server_pull};
use relyt_sdk::sql::TableName;
use relyt_sdk::staging::MIN_PART_SIZE;
use relyt_sdk::{CsvEncoder, RelytRecord, StagedObject, Stager};
use uuid::Uuid;

use crate::common::{TestDb, s3_config};

#[derive(RelytRecord)]
struct Reference {
    #[relyt(key)]
    id: i64,
    name: String,
    score: f64,
    created_at: DateTime<Utc>,
    n: i32,
}

fn reference(i: i64) -> Reference {
    Reference {
        id: i,
        name: format!("name, \"{i}\"\n"),
        score: i as f64 / 3.0,
        created_at: Utc
            .timestamp_opt(1_700_000_000 + i, 0)
            .single()
            .expect("valid"),
        n: (i % 7) as i32,
    }
}

const COLUMNS: &[&str] = &["id", "name", "score", "created_at", "n"];

/// Encodes `rows` reference rows and streams them to S3 in parts of at least `MIN_PART_SIZE`.
async fn stage(stager: &Stager, key: &str, rows: i64) -> StagedObject {
    let mut enc = CsvEncoder::with_capacity(MIN_PART_SIZE + 4096);
    let mut upload = stager.start_upload(key).await.expect("start upload");
    for i in 0..rows {
        enc.encode(&reference(i)).expect("encodes");
        if enc.len() >= MIN_PART_SIZE {
            upload.put_part(enc.take()).await.expect("part");
        }
    }
    if !enc.is_empty() {
        upload.put_part(enc.take()).await.expect("last part");
    }
    upload.complete().await.expect("complete")
}

/// A multipart object of several parts loads completely through both methods, into a table whose
/// name needs quoting.
#[tokio::test]
async fn multipart_object_imports_by_server_pull_and_client_copy() {
    let mut db = TestDb::new("staging").await;
    let ddl = "(id bigint primary key, name text, score float8, created_at timestamptz, n int)";
    db.exec(&format!(
        "CREATE TABLE \"Pull Target\" {ddl}; CREATE TABLE copy_target {ddl}"
    ))
    .await;
    let stager = Stager::new(&s3_config("multipart")).await.expect("stager");
    let key = stager.object_key(Uuid::new_v4(), 1);
    const ROWS: i64 = 250_000; // ~13 MB: three parts
    let object = stage(&stager, &key, ROWS).await;
    assert!(object.size > 2 * MIN_PART_SIZE as u64, "{object:?}");

    let pull: TableName = TableName::new(Some(&db.schema), "Pull Target");
    let n = server_pull(
        &mut db.conn,
        &stager,
        &object,
        &pull,
        COLUMNS,
        Duration::from_secs(300),
    )
    .await
    .expect("server pull");
    assert_eq!(n, ROWS as u64);
    let copy = TableName::new(Some(&db.schema), "copy_target");
    let n = client_copy(&mut db.conn, &stager, &object, &copy, COLUMNS)
        .await
        .expect("client copy");
    assert_eq!(n, ROWS as u64);

    let want = (ROWS, ROWS * (ROWS - 1) / 2);
    assert_eq!(db.count_sum("\"Pull Target\"").await, want);
    assert_eq!(db.count_sum("copy_target").await, want);
    let (same,): (bool,) = sqlx::query_as(
        "SELECT NOT EXISTS (SELECT * FROM \"Pull Target\" EXCEPT SELECT * FROM copy_target)",
    )
    .fetch_one(&mut db.conn)
    .await
    .expect("compare");
    assert!(same, "both methods load the same rows");

    stager.delete(&key).await.expect("delete");
    db.drop().await;
}

/// A missing object fails both methods with a clear error that names the file and leaks no
/// signature; the connection stays usable.
#[tokio::test]
async fn missing_object_is_a_clear_error_without_secrets() {
    let mut db = TestDb::new("missing").await;
    db.exec("CREATE TABLE t (id bigint)").await;
    let config = s3_config("missing");
    let secret = std::env::var("RELYT_TEST_S3_SECRET_KEY").expect("secret");
    assert!(!format!("{config:?}").contains(&secret));
    let stager = Stager::new(&config).await.expect("stager");
    assert!(!format!("{stager:?}").contains(&secret));
    let key = stager.object_key(Uuid::new_v4(), 7);
    let object = StagedObject {
        key: key.clone(),
        size: 0,
    };
    let table = TableName::new(Some(&db.schema), "t");

    let url = stager
        .presign_get(&key, Duration::from_secs(60))
        .await
        .expect("presign");
    let signature = url
        .expose()
        .split("X-Amz-Signature=")
        .nth(1)
        .expect("a signature")
        .to_owned();
    assert!(!format!("{url:?} {url}").contains(&signature));

    let err = server_pull(
        &mut db.conn,
        &stager,
        &object,
        &table,
        &["id"],
        Duration::from_secs(60),
    )
    .await
    .expect_err("missing object");
    let text = format!("{err} {err:?}");
    assert_eq!(err.sqlstate(), Some("38000"), "{text}");
    assert!(text.contains(&key), "names the file: {text}");
    assert!(
        !text.contains("X-Amz-Signature") && !text.contains("X-Amz-Credential"),
        "{text}"
    );

    let err = client_copy(&mut db.conn, &stager, &object, &table, &["id"])
        .await
        .expect_err("missing object");
    let text = format!("{err} {err:?}");
    assert!(text.contains(&key) && text.contains("GetObject"), "{text}");
    assert!(!text.contains(&secret), "{text}");

    db.exec("INSERT INTO t VALUES (1)").await;
    db.drop().await;
}
