//! Settings: where staged files go on S3, and the secrets that must never be shown.

use std::fmt;

/// A secret (an S3 secret key, a session token): its `Debug` and `Display` print `***`, so it
/// cannot leak through logs, errors or `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Call it only where the value is handed to a client, never to format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Where and how files are staged on S3 (or an S3-compatible store).
///
/// ```
/// use relyt_sdk::S3Config;
/// let s3 = S3Config::new("my-bucket")
///     .with_endpoint("http://127.0.0.1:9000")
///     .with_region("us-east-1")
///     .with_prefix("loads")
///     .with_credentials("AKIA...", "wJalr...");
/// assert!(!format!("{s3:?}").contains("wJalr"));
/// ```
#[derive(Clone, Debug)]
pub struct S3Config {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<Secret>,
    pub(crate) session_token: Option<Secret>,
    pub(crate) force_path_style: bool,
}

impl S3Config {
    /// Staging in `bucket`, with credentials, region and endpoint from the standard AWS
    /// environment and credential chain unless set explicitly.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            force_path_style: false,
        }
    }

    /// A custom endpoint (MinIO, s3s, Ceph, ...). Path-style addressing is turned on with it.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self.force_path_style = true;
        self
    }

    /// The region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// A key prefix under which every staged object is written (`prefix/process-id/...`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_matches('/').to_owned();
        self
    }

    /// Static credentials instead of the AWS credential chain.
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret_access_key.into());
        self
    }

    /// A session token to go with static credentials.
    pub fn with_session_token(mut self, token: impl Into<Secret>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Virtual-host (`false`) or path-style (`true`) addressing.
    pub fn with_force_path_style(mut self, on: bool) -> Self {
        self.force_path_style = on;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix (without leading or trailing `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// What an import does with a row whose primary key is already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConflictMode {
    /// Upsert: the row replaces the stored one (`ON CONFLICT (key) DO UPDATE`). When one
    /// processor receives a key more than once, the row inserted last wins. The default for
    /// tables with a primary key.
    #[default]
    Update,
    /// Keep the stored row (`ON CONFLICT (key) DO NOTHING`); among rows of one processor with
    /// the same new key, the first inserted wins.
    DoNothing,
    /// Plain `INSERT`/`COPY`: a duplicate key is a data error. The only mode for tables without
    /// a primary key.
    Insert,
}
