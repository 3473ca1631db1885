//! Running the Relyt external-table import for one staged file ([`super::ImportMethod::RelytExternalTable`]).

use sqlx::{Executor, PgConnection};

use super::postgres::{Outcome, Target};
use super::relyt::{
    ExternalColumn, ExternalTableImport, ImportStatements, RelytCredentials, S3Location,
};
use crate::config::Secret;
use crate::error::{Error, Result};
use crate::sql::statement;
use crate::staging::StagedObject;

/// What the Relyt method needs beyond the common target.
#[derive(Debug, Clone)]
pub(crate) struct RelytTarget {
    /// The target columns' types (`format_type`), in record order.
    pub(crate) column_types: Vec<String>,
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) region: String,
    pub(crate) credentials: RelytAuth,
    /// Short tag of the process id, for unique external table names.
    pub(crate) tag: String,
}

/// How Relyt authenticates to S3.
#[derive(Debug, Clone)]
pub(crate) enum RelytAuth {
    Inline {
        access_key_id: String,
        secret: Secret,
    },
    ConfigFile(String),
}

/// The statements that import `object` (file `file_no`) through an external table.
pub(crate) fn statements(
    target: &Target,
    relyt: &RelytTarget,
    object: &StagedObject,
    file_no: u64,
) -> Result<ImportStatements> {
    let columns: Vec<ExternalColumn<'_>> = target
        .columns
        .iter()
        .zip(&relyt.column_types)
        .map(|(name, sql_type)| ExternalColumn { name, sql_type })
        .collect();
    let keys: Vec<&str> = target.keys.iter().map(String::as_str).collect();
    let external = format!("relyt_ext_{}_{file_no}", relyt.tag);
    let credentials = match &relyt.credentials {
        RelytAuth::Inline {
            access_key_id,
            secret,
        } => RelytCredentials::Inline {
            access_key_id,
            secret,
        },
        RelytAuth::ConfigFile(path) => RelytCredentials::ConfigFile(path),
    };
    ExternalTableImport {
        target: &target.table,
        columns: &columns,
        key_columns: &keys,
        conflict: target.conflict,
        ordinal_column: None,
        locations: &[S3Location {
            endpoint: &relyt.endpoint,
            bucket: &relyt.bucket,
            key: &object.key,
            region: &relyt.region,
        }],
        credentials,
        reject_limit: None,
        external_table: &external,
    }
    .statements()
}

/// Runs the import inside the caller's transaction: create, insert, drop. Errors are redacted of
/// the inline secret before they go anywhere.
pub(crate) async fn import(
    conn: &mut PgConnection,
    target: &Target,
    relyt: &RelytTarget,
    object: &StagedObject,
    file_no: u64,
) -> Result<Outcome> {
    let sql = statements(target, relyt, object, file_no)?;
    tracing::debug!(statements = %sql.redacted(), "Relyt external-table import");
    let context = format!(
        "importing {} into {} through an external table",
        object.key, target.table
    );
    let redact = |e: sqlx::Error| match Error::database(context.clone(), e) {
        Error::Database {
            context,
            message,
            code,
            transient,
        } => Error::Database {
            context,
            message: sql.redact(&message),
            code,
            transient,
        },
        other => other,
    };
    conn.execute(statement(sql.create.expose().to_owned()))
        .await
        .map_err(redact)?;
    let rows = conn
        .execute(statement(sql.insert.clone()))
        .await
        .map_err(redact)?
        .rows_affected();
    conn.execute(statement(sql.drop.clone()))
        .await
        .map_err(redact)?;
    Ok(Outcome {
        rows,
        rejects: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ConflictMode;
    use crate::import::ImportMethod;

    fn target(conflict: ConflictMode, keys: &[&str]) -> Target {
        Target {
            table: "analytics.\"Events\"".parse().expect("table"),
            columns: vec!["id", "name", "embedding"],
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            conflict,
            method: ImportMethod::RelytExternalTable,
            url_lifetime: Duration::from_secs(60),
            relyt: None,
        }
    }

    fn relyt(credentials: RelytAuth) -> RelytTarget {
        RelytTarget {
            column_types: vec![
                "bigint".into(),
                "character varying(40)".into(),
                "vecf16(3)".into(),
            ],
            endpoint: "https://s3.us-west-2.amazonaws.com".into(),
            bucket: "staging".into(),
            region: "us-west-2".into(),
            credentials,
            tag: "0123456789ab".into(),
        }
    }

    fn object() -> StagedObject {
        StagedObject {
            key: "loads/0123456789ab/0000000007.csv".into(),
            size: 1,
        }
    }

    /// The statements the processor runs for file 7 of an upserting job, as logged (redacted).
    #[test]
    fn processor_statements_for_an_upsert() {
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG");
        let auth = RelytAuth::Inline {
            access_key_id: "AKIDEXAMPLE".into(),
            secret: secret.clone(),
        };
        let sql = statements(
            &target(ConflictMode::Update, &["id"]),
            &relyt(auth),
            &object(),
            7,
        )
        .expect("statements");
        assert!(sql.create.expose().contains("secret=wJalrXUtnFEMI/K7MDENG"));
        let logged = sql.redacted();
        assert!(!logged.contains(secret.expose()));
        insta::assert_snapshot!(logged);
    }

    /// A plain insert with the keys in a config file on the server.
    #[test]
    fn processor_statements_with_a_config_file() {
        let auth = RelytAuth::ConfigFile("/etc/relyt/s3.conf".into());
        let sql = statements(
            &target(ConflictMode::Insert, &[]),
            &relyt(auth),
            &object(),
            7,
        )
        .expect("statements");
        insta::assert_snapshot!(sql.redacted());
    }
}
