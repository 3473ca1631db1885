//! Integration tests against a real PostgreSQL 15 and a real S3-compatible server.
//!
//! One binary, one module per feature (clickhouse-rs's `tests/it` layout). Every test works in a
//! schema of its own, so tests run in parallel without touching each other.
//!
//! The services come from these environment variables, which `scripts/services.sh env` prints
//! (`eval "$(scripts/services.sh env)"`; `scripts/test.sh` does it for you):
//!
//! | variable | what |
//! | --- | --- |
//! | `RELYT_TEST_DATABASE_URL` | a PostgreSQL 15 database the tests may create schemas in, as a superuser |
//! | `RELYT_TEST_S3_ENDPOINT` | the S3 endpoint, e.g. `http://127.0.0.1:19000` |
//! | `RELYT_TEST_S3_ACCESS_KEY`, `RELYT_TEST_S3_SECRET_KEY` | its credentials |
//! | `RELYT_TEST_S3_REGION`, `RELYT_TEST_S3_BUCKET` | region and an existing bucket |
//!
//! Without them every test fails with a message that says how to start the services: a test never
//! passes by skipping.

mod badrows;
mod common;
mod processor;
mod resume;
mod roundtrip;
mod staging;
