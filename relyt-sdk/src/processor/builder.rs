//! Building a processor: settings, validation, the catalog check.

use std::marker::PhantomData;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use super::BulkProcessor;
use crate::config::{ConflictMode, S3Config, Secret};
use crate::error::{Error, Result};
use crate::import::ImportMethod;
use crate::import::external::{RelytAuth, RelytTarget};
use crate::record::RelytRecord;
use crate::retry::RetryPolicy;
use crate::sql::TableName;
use crate::staging::MIN_PART_SIZE;

/// Resolved settings of a processor.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) batch_size: u64,
    pub(crate) max_file_bytes: u64,
    pub(crate) max_file_age: Duration,
    pub(crate) concurrency: usize,
    pub(crate) max_pending_files: usize,
    pub(crate) part_size: usize,
    pub(crate) max_error_records: u64,
    pub(crate) keep_staged_files: bool,
    pub(crate) retry: RetryPolicy,
}

/// Where the database connection comes from.
enum Database {
    None,
    Url(Secret),
    Pool(PgPool),
}

/// Where the S3 settings come from.
enum S3Source {
    None,
    Explicit(S3Config),
    FromDatabase,
}

/// Builds a [`BulkProcessor`]; start with [`BulkProcessor::builder`].
///
/// Every setting has a `with_x(self, ..)` form for chaining; [`build`](Self::build) validates them
/// all and checks the record against the table's catalog before any row is staged.
#[must_use = "a builder does nothing until build().await is called"]
pub struct Builder<T> {
    database: Database,
    table: Option<String>,
    s3: S3Source,
    conflict: Option<ConflictMode>,
    method: ImportMethod,
    settings: Settings,
    apply_migrations: bool,
    presigned_url_lifetime: Duration,
    resume: Option<Uuid>,
    relyt_config_file: Option<String>,
    _record: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("table", &self.table)
            .field("method", &self.method)
            .field("conflict", &self.conflict)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<T: RelytRecord + Send + Sync + 'static> Builder<T> {
    pub(super) fn new() -> Self {
        Self {
            database: Database::None,
            table: None,
            s3: S3Source::None,
            conflict: None,
            method: ImportMethod::default(),
            settings: Settings {
                batch_size: 100_000,
                max_file_bytes: 256 * 1024 * 1024,
                max_file_age: Duration::from_secs(30),
                concurrency: 2,
                max_pending_files: 4,
                part_size: 8 * 1024 * 1024,
                max_error_records: 0,
                keep_staged_files: false,
                retry: RetryPolicy::default(),
            },
            apply_migrations: true,
            presigned_url_lifetime: Duration::from_secs(15 * 60),
            resume: None,
            relyt_config_file: None,
            _record: PhantomData,
        }
    }

    /// Connect with a URL (`postgres://user:password@host:port/db`). The password never appears
    /// in logs, errors or `Debug` output.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database = Database::Url(Secret::new(url));
        self
    }

    /// Use an existing pool. It needs `concurrency + 2` connections.
    pub fn pool(mut self, pool: PgPool) -> Self {
        self.database = Database::Pool(pool);
        self
    }

    /// The target table, `table` or `schema.table` as PostgreSQL reads it (quote parts that hold
    /// dots or upper case: `"My Schema"."Events"`). Defaults to the record's
    /// `#[relyt(schema = ..., table = ...)]`.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Stage files with these S3 settings.
    pub fn s3(mut self, config: S3Config) -> Self {
        self.s3 = S3Source::Explicit(config);
        self
    }

    /// Read the S3 settings from the database's `relyt_sys.loader_config()` function, as
    /// relyt-loader-go does (endpoint, region, bucket_name, prefix, access_key, secret_key).
    pub fn s3_from_database(mut self) -> Self {
        self.s3 = S3Source::FromDatabase;
        self
    }

    /// Rows per staged file (default 100 000).
    pub fn batch_size(mut self, rows: u64) -> Self {
        self.settings.batch_size = rows;
        self
    }

    /// Freeze a file once it holds this many bytes (default 256 MiB).
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_file_bytes = bytes;
        self
    }

    /// Freeze a file this long after its first row, so rows never wait for the next insert
    /// (default 30 s).
    pub fn max_file_age(mut self, age: Duration) -> Self {
        self.settings.max_file_age = age;
        self
    }

    /// Background importers (default 2). For tables with a key, rows are spread over this many
    /// lanes by key, so that importers never touch the same key.
    pub fn concurrency(mut self, importers: usize) -> Self {
        self.settings.concurrency = importers;
        self
    }

    /// Files that may be staged but not yet imported; past that `insert().await` waits
    /// (default 4).
    pub fn max_pending_files(mut self, files: usize) -> Self {
        self.settings.max_pending_files = files;
        self
    }

    /// Bytes per multipart part, and so the memory an open file holds (default 8 MiB, at least
    /// 5 MiB).
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.settings.part_size = bytes;
        self
    }

    /// What to do with rows whose key is already in the table; by default upsert when the table
    /// (or the record) has a key, plain insert otherwise.
    pub fn conflict(mut self, mode: ConflictMode) -> Self {
        self.conflict = Some(mode);
        self
    }

    /// Bad records tolerated before the job fails (default 0).
    pub fn max_error_records(mut self, records: u64) -> Self {
        self.settings.max_error_records = records;
        self
    }

    /// Keep staged objects after their import (default: delete them).
    pub fn keep_staged_files(mut self, keep: bool) -> Self {
        self.settings.keep_staged_files = keep;
        self
    }

    /// How transient faults (network, S3 5xx and throttling, a restarting database, deadlocks,
    /// serialization failures) are retried (default: 10 attempts within 2 minutes, backoff from
    /// 200 ms to 10 s with jitter). They never count as bad records.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = policy;
        self
    }

    /// How staged files reach the table (default [`ImportMethod::ClientCopy`]).
    pub fn import_method(mut self, method: ImportMethod) -> Self {
        self.method = method;
        self
    }

    /// Lifetime of the presigned URLs given to the server ([`ImportMethod::ServerPull`];
    /// default 15 minutes).
    pub fn presigned_url_lifetime(mut self, lifetime: Duration) -> Self {
        self.presigned_url_lifetime = lifetime;
        self
    }

    /// Resume the job `process_id` left by a process that stopped (a crash, a kill, a failed
    /// job): before `build` returns, its files that are complete on S3 but not imported (FROZEN,
    /// IMPORTING, ERROR) are imported, in file order and each exactly once, even if another
    /// processor resumes the same job at the same time. Files that were still being written
    /// (CREATED) are lost with the crash and reported in [`BulkProcessor::resumed`]. The
    /// processor then goes on with the same process id.
    pub fn resume(mut self, process_id: Uuid) -> Self {
        self.resume = Some(process_id);
        self
    }

    /// With [`ImportMethod::RelytExternalTable`]: let Relyt read S3 credentials from this `s3`
    /// protocol configuration file on its hosts (`config=<path>`) instead of writing the keys
    /// into each `CREATE EXTERNAL TABLE` statement (where statement logs would keep them).
    pub fn relyt_s3_config_file(mut self, path: impl Into<String>) -> Self {
        self.relyt_config_file = Some(path.into());
        self
    }

    /// Create or update the `relyt_sys` tables at start (default true). Turn it off when a DBA
    /// applies `migrations/` and the loading role may not create objects.
    pub fn apply_migrations(mut self, apply: bool) -> Self {
        self.apply_migrations = apply;
        self
    }

    fn validate(&self) -> Result<()> {
        let s = &self.settings;
        let bad = |msg: String| Err(Error::Config(msg));
        if s.batch_size == 0 {
            return bad("batch_size must be at least 1 row".into());
        }
        if s.concurrency == 0 || s.concurrency > 64 {
            return bad(format!(
                "concurrency must be 1 to 64, not {}",
                s.concurrency
            ));
        }
        if s.max_pending_files == 0 {
            return bad("max_pending_files must be at least 1".into());
        }
        if s.part_size < MIN_PART_SIZE {
            return bad(format!(
                "part_size must be at least 5 MiB ({MIN_PART_SIZE} bytes, S3's smallest part), \
                 not {}",
                s.part_size
            ));
        }
        if s.max_file_bytes < s.part_size as u64 {
            return bad(format!(
                "max_file_bytes ({}) must be at least part_size ({})",
                s.max_file_bytes, s.part_size
            ));
        }
        if s.retry.max_attempts == 0 {
            return bad("retry_policy.max_attempts must be at least 1 (1 = no retries)".into());
        }
        if s.max_file_age.is_zero() {
            return bad("max_file_age must be longer than zero".into());
        }
        if T::COLUMNS.is_empty() {
            return bad("the record has no columns".into());
        }
        Ok(())
    }

    /// Connects, checks the record against the table, registers the job and starts the
    /// background importers.
    pub async fn build(self) -> Result<BulkProcessor<T>> {
        self.validate()?;
        let table = match (&self.table, T::TABLE) {
            (Some(t), _) => t.parse::<TableName>()?,
            (None, Some(name)) => TableName::new(T::SCHEMA, name),
            (None, None) => {
                return Err(Error::Config(
                    "no target table: call .table(\"schema.table\") or put \
                     #[relyt(table = \"...\")] on the record"
                        .into(),
                ));
            }
        };
        let pool = match self.database {
            Database::Pool(pool) => pool,
            Database::Url(url) => PgPoolOptions::new()
                .max_connections(self.settings.concurrency as u32 + 2)
                .connect(url.expose())
                .await
                .map_err(|e| Error::database("connecting to the database", e))?,
            Database::None => {
                return Err(Error::Config(
                    "no database: call .database_url(url) or .pool(pool)".into(),
                ));
            }
        };
        let s3 = match self.s3 {
            S3Source::Explicit(config) => config,
            S3Source::FromDatabase => super::catalog::loader_config(&pool).await?,
            S3Source::None => {
                return Err(Error::Config(
                    "no staging area: call .s3(S3Config::new(bucket)...) or .s3_from_database()"
                        .into(),
                ));
            }
        };
        let catalog = super::catalog::check_table::<T>(&pool, &table).await?;
        let keys: Vec<String> = if crate::record::key_columns::<T>().next().is_some() {
            crate::record::key_columns::<T>()
                .map(str::to_owned)
                .collect()
        } else {
            catalog.primary_key.clone()
        };
        let conflict = match self.conflict {
            Some(mode @ (ConflictMode::Update | ConflictMode::DoNothing)) if keys.is_empty() => {
                return Err(Error::Config(format!(
                    "{mode:?} needs a key, but {table} has no primary key and the record marks no \
                     #[relyt(key)] field; use ConflictMode::Insert or mark the key fields"
                )));
            }
            Some(mode) => mode,
            None if keys.is_empty() => ConflictMode::Insert,
            None => ConflictMode::Update,
        };
        if conflict != ConflictMode::Insert {
            for key in &keys {
                if !T::COLUMNS.iter().any(|c| c.name() == key) {
                    return Err(Error::Config(format!(
                        "the key column {key:?} of {table} is not a field of the record; an \
                         upsert needs every key column (or use ConflictMode::Insert)"
                    )));
                }
            }
        }
        let relyt = if self.method == ImportMethod::RelytExternalTable {
            let credentials = match (
                &self.relyt_config_file,
                &s3.access_key_id,
                &s3.secret_access_key,
            ) {
                (Some(path), _, _) => RelytAuth::ConfigFile(path.clone()),
                (None, Some(id), Some(secret)) => RelytAuth::Inline {
                    access_key_id: id.clone(),
                    secret: secret.clone(),
                },
                _ => {
                    return Err(Error::Config(
                        "the Relyt method needs S3 keys it can hand to the server: set them with \
                         S3Config::with_credentials or name a config file with \
                         .relyt_s3_config_file(path)"
                            .into(),
                    ));
                }
            };
            let region = s3.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
            Some(RelytTarget {
                column_types: catalog.column_types.clone(),
                endpoint: s3
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| format!("s3.{region}.amazonaws.com")),
                bucket: s3.bucket.clone(),
                region,
                credentials,
                tag: String::new(),
            })
        } else {
            None
        };
        super::BulkProcessor::start(super::Start {
            pool,
            s3,
            table,
            keys: if conflict == ConflictMode::Insert {
                Vec::new()
            } else {
                keys
            },
            conflict,
            method: self.method,
            settings: self.settings,
            apply_migrations: self.apply_migrations,
            url_lifetime: self.presigned_url_lifetime,
            resume: self.resume,
            relyt,
        })
        .await
    }
}
