#!/usr/bin/env bash
# The end-to-end load benchmark of issue 6 (benches/load.rs): the same N reference rows loaded by
# the SDK (each import method, default and tuned settings), by plain COPY FROM STDIN, by multi-row
# INSERT and by the hand-written COPY-to-temp + ON CONFLICT upsert, with and without a primary key.
# Prints a table per path (rows/s, wall time, ratios, peak RSS, CPU by process) and, as its last
# line, one key=value per figure.
#
# usage: scripts/bench.sh [rows]     rows defaults to 1000000; scripts/bench.sh 10000000 for 10 M
#
# Starts the local services (scripts/services.sh), builds in release and runs
# `cargo bench --bench load`. Other knobs are environment variables read by the benchmark
# (RELYT_BENCH_PATHS, RELYT_BENCH_BEST, RELYT_BENCH_INSERT_ROWS, RELYT_BENCH_HAND_BATCH: see the
# top of benches/load.rs). The machines are noisy (about ±25% between runs): compare only the
# figures of one run, and run nothing else meanwhile (a compile on the side halves every figure).
set -euo pipefail
cd "$(dirname "$0")/.."

msg() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
    msg "error: $*"
    exit 1
}

rows="${1:-${RELYT_BENCH_ROWS:-1000000}}"
[[ "$rows" =~ ^[0-9]+$ && "$rows" -gt 0 ]] || die "rows must be a positive integer, not '$rows'"
(($# <= 1)) || die "usage: scripts/bench.sh [rows]"

msg "starting the services"
scripts/services.sh start
eval "$(scripts/services.sh env)"

msg "building the benchmark (release; about 6 minutes from cold)"
cargo bench -p relyt-sdk --bench load --locked --no-run >&2

if pgrep -x rustc >/dev/null 2>&1 || pgrep -f 'cargo (build|test|bench|clippy)' >/dev/null 2>&1; then
    msg "warning: a compile is running on this machine: the figures will be low and noisy"
fi

dirty=""
git diff --quiet HEAD -- relyt-sdk/src relyt-derive/src 2>/dev/null || dirty=" with uncommitted changes"
msg "running: $rows rows, library at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty"
start=$SECONDS
RELYT_BENCH_ROWS="$rows" cargo bench -p relyt-sdk --bench load --locked
msg "done in $((SECONDS - start)) s"
