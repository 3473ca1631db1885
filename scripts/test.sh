#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts the local services (PostgreSQL 15
# and an S3 server, see scripts/services.sh), then runs fmt, clippy with warnings denied, and every
# test (unit, doc, derive UI, integration against the real services) plus a smoke run of the
# benchmarks.
#
# usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "services"
scripts/services.sh start
eval "$(scripts/services.sh env)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# --all-targets includes the criterion benchmarks, which under `cargo test` run each routine once,
# untimed (a smoke run that asserts no time); the doc tests need their own invocation.
# The crash test starts the crash_and_resume example as a child process, so build it first
# (cargo test builds examples under hashed names only).
cargo build --workspace --examples --locked
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked

echo "test.sh: all checks passed" >&2
