//! Settings shared by the examples: the local services of `scripts/services.sh`, read from the
//! environment it prints (`eval "$(scripts/services.sh env)"`).

use relyt_sdk::S3Config;

/// Reads a required environment variable, or exits with a hint.
pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!(
            "{name} is not set. Start the local services and load their settings first:\n  \
             scripts/services.sh start && eval \"$(scripts/services.sh env)\""
        );
        std::process::exit(2)
    })
}

/// The database URL.
pub(crate) fn database_url() -> String {
    env("RELYT_TEST_DATABASE_URL")
}

/// The S3 staging area, under `prefix`.
pub(crate) fn s3(prefix: &str) -> S3Config {
    S3Config::new(env("RELYT_TEST_S3_BUCKET"))
        .with_endpoint(env("RELYT_TEST_S3_ENDPOINT"))
        .with_region(env("RELYT_TEST_S3_REGION"))
        .with_credentials(
            env("RELYT_TEST_S3_ACCESS_KEY"),
            env("RELYT_TEST_S3_SECRET_KEY"),
        )
        .with_prefix(prefix)
}
