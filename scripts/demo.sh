#!/usr/bin/env bash
# The main job, from a fresh machine: starts the local services (PostgreSQL 15 + an S3 server),
# then loads one million rows end to end through S3 with the quickstart example and checks the
# count in PostgreSQL.
#
# usage: scripts/demo.sh [rows] [client-copy|server-pull]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh start
eval "$(scripts/services.sh env)"
echo "demo: building the quickstart example (release)" >&2
cargo build --release --locked --example quickstart
exec target/release/examples/quickstart "${1:-1000000}" "${2:-client-copy}"
