#!/usr/bin/env bash
# Local test services for relyt-sdk: a throwaway PostgreSQL 15 server and an
# S3-compatible server (s3s-fs), both listening on 127.0.0.1 only.
#
# Usage: scripts/services.sh start|stop [--purge]|status|env|psql [psql args...]
#                            |pg-kill|pg-start|s3-stop|s3-start   (fault injection for tests)
#
#   start          install what is missing, then start both services (idempotent)
#   stop           stop what this script started; data is kept
#   stop --purge   stop, then delete the whole state directory
#   status         report whether each service is running (exit 0 only if both are)
#   env            print `export` lines for the tests: eval "$(scripts/services.sh env)"
#   psql [args]    open psql on the test database, passing extra args through
#
# Configuration (environment):
#   RELYT_SERVICES_DIR  state directory  (default /tmp/relyt-sdk-services)
#   RELYT_PG_PORT       PostgreSQL port  (default 15432)
#   RELYT_S3_PORT       s3s-fs port      (default 19000)
#
# The state directory deliberately lives outside the repository: CI clones into
# a mode-700 temporary directory that the `postgres` user cannot traverse.
# Layout:
#   pg/              PostgreSQL data directory (and its unix socket)
#   s3/              s3s-fs root; each top-level directory is a bucket
#   logs/            postgres.log, s3s-fs.log
#   s3s-fs.pid       pid of the s3s-fs process we started
#   env              the same export lines `env` prints
#
# All messages go to stderr, prefixed "services:"; only `env` writes to stdout.

set -euo pipefail
umask 022

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
# Absolute path of this script, for messages and usage (we cd / below).
SELF="$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/$(basename -- "${BASH_SOURCE[0]}")"

STATE="${RELYT_SERVICES_DIR:-/tmp/relyt-sdk-services}"
PG_PORT="${RELYT_PG_PORT:-15432}"
S3_PORT="${RELYT_S3_PORT:-19000}"

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_DB=relyt_test
PG_SUPERUSER=postgres # superuser role created by initdb (not the OS user)

S3FS_VERSION=0.14.1
# Fixed credentials for a loopback-only test server; not secrets.
S3_ACCESS_KEY=relyt-test-access
S3_SECRET_KEY=relyt-test-secret-0123456789
S3_REGION=us-east-1
S3_BUCKET=relyt-test

READY_TIMEOUT=30 # seconds to wait for each service to answer

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
msg() { printf 'services: %s\n' "$*" >&2; }
die() {
    msg "error: $*"
    exit 1
}

# Make the state path absolute (the script may be run from any cwd) and keep
# it to characters that need no quoting: it ends up inside pg_ctl's -o string.
case "$STATE" in
/*) ;;
*) STATE="$PWD/$STATE" ;;
esac
STATE="${STATE%/}"
[[ "$STATE" =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
    die "RELYT_SERVICES_DIR must be a plain path (letters, digits, . _ / + -): '$STATE'"
[[ "$PG_PORT" =~ ^[0-9]+$ && "$S3_PORT" =~ ^[0-9]+$ ]] ||
    die "RELYT_PG_PORT and RELYT_S3_PORT must be numbers"

PG_DATA="$STATE/pg"
S3_ROOT="$STATE/s3"
LOG_DIR="$STATE/logs"
PG_LOG="$LOG_DIR/postgres.log"
S3_LOG="$LOG_DIR/s3s-fs.log"
S3_PID_FILE="$STATE/s3s-fs.pid"
ENV_FILE="$STATE/env"
MARKER="$STATE/.relyt-sdk-services" # proves a directory is ours before --purge

# Leave the caller's cwd: it may be a mode-700 directory, and initdb/pg_ctl
# running as `postgres` fail when they cannot resolve their working directory.
cd /

# PostgreSQL refuses to run as root, so as root we run its tools as the OS
# user `postgres`; otherwise as ourselves.
if [[ $EUID -eq 0 ]]; then
    PG_OS_USER=postgres
else
    PG_OS_USER="$(id -un)"
fi

# PATH for the PostgreSQL server. `COPY ... FROM PROGRAM 'curl ...'` runs
# through the server's /bin/sh, so curl must be found on this PATH.
server_path() {
    local p="$PG_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    local curl_bin
    if curl_bin="$(command -v curl)"; then
        p="$(dirname "$curl_bin"):$p"
    fi
    printf '%s' "$p"
}

# Run a PostgreSQL server-side tool (initdb, pg_ctl) as the PostgreSQL OS user.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_OS_USER" -- env PATH="$(server_path)" "$@"
    else
        env PATH="$(server_path)" "$@"
    fi
}

# psql against the test server over TCP (trust auth on loopback).
pg_psql() {
    local db="$1"
    shift
    PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d "$db" "$@"
}

# Prefix for commands that need root (package installs).
root_cmd() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

# Print the last lines of a log file to stderr (for failures).
log_tail() {
    msg "last lines of $1:"
    tail -n 30 "$1" 2>/dev/null | sed 's/^/    /' >&2 || true
}

# Create the state directory skeleton (idempotent).
make_state_dirs() {
    mkdir -p "$STATE" "$S3_ROOT/$S3_BUCKET" "$LOG_DIR" "$PG_DATA"
    chmod 755 "$STATE" # `postgres` must be able to traverse it
    touch "$MARKER"
    # pg/ and the PostgreSQL log are written by the PostgreSQL OS user.
    touch "$PG_LOG"
    if [[ $EUID -eq 0 ]]; then
        chown "$PG_OS_USER:" "$PG_DATA" "$PG_LOG"
    fi
}

# ---------------------------------------------------------------------------
# Installation of missing pieces
# ---------------------------------------------------------------------------
APT_UPDATED=
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    if [[ -z "$APT_UPDATED" ]]; then
        msg "apt-get update"
        root_cmd apt-get update -qq >&2
        APT_UPDATED=1
    fi
    msg "apt-get install $*"
    root_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_packages() {
    local pkgs=()
    # On Debian 12 contrib (file_fdw included) ships inside postgresql-15;
    # "postgresql-contrib-15" is only a virtual package it provides.
    if [[ ! -x "$PG_BIN/postgres" || ! -x "$PG_BIN/initdb" ||
        ! -f "/usr/share/postgresql/$PG_MAJOR/extension/file_fdw.control" ]]; then
        pkgs+=("postgresql-$PG_MAJOR")
    fi
    if [[ ! -x "$PG_BIN/psql" ]]; then
        pkgs+=("postgresql-client-$PG_MAJOR")
    fi
    command -v curl >/dev/null || pkgs+=(curl ca-certificates)
    if ((${#pkgs[@]})); then
        apt_install "${pkgs[@]}"
    fi

    # The Debian package creates the `postgres` user; create it if missing.
    if [[ $EUID -eq 0 ]] && ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        msg "creating system user $PG_OS_USER"
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /bin/bash "$PG_OS_USER"
    fi
}

# Path of the s3s-fs binary, or empty.
s3fs_bin() {
    local b
    if b="$(command -v s3s-fs)"; then
        printf '%s' "$b"
    elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]]; then
        printf '%s' "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
    fi
}

ensure_s3fs() {
    # Another `cargo install s3s-fs` may already be compiling it (about two
    # minutes cold): wait for that one instead of building a second copy.
    local waited=0
    while pgrep -f 'cargo install s3s-fs' >/dev/null; do
        ((waited % 30 == 0)) && msg "waiting for a running 'cargo install s3s-fs' to finish"
        sleep 5
        waited=$((waited + 5))
        ((waited < 900)) || die "gave up waiting for the running cargo install"
    done

    [[ -n "$(s3fs_bin)" ]] && return 0

    local cargo
    cargo="$(command -v cargo || true)"
    [[ -n "$cargo" ]] || cargo="${CARGO_HOME:-$HOME/.cargo}/bin/cargo"
    [[ -x "$cargo" ]] || die "s3s-fs is missing and cargo was not found to install it"
    # Newer s3s-fs releases need a newer rustc than the project's toolchain.
    msg "installing s3s-fs $S3FS_VERSION with cargo (about 2 minutes)"
    "$cargo" install "s3s-fs@$S3FS_VERSION" --features binary --locked >&2
    [[ -n "$(s3fs_bin)" ]] || die "cargo install finished but s3s-fs is not on PATH or in ~/.cargo/bin"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
pg_running() {
    [[ -f "$PG_DATA/PG_VERSION" ]] &&
        as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

# Port the running server listens on (line 4 of postmaster.pid).
pg_running_port() {
    sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true
}

pg_start() {
    # The unix socket lives in the data dir; its path must fit in sun_path.
    local sock="$PG_DATA/.s.PGSQL.$PG_PORT"
    ((${#sock} < 108)) || die "socket path too long ($sock); use a shorter RELYT_SERVICES_DIR"
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_OS_USER" -- test -w "$PG_DATA" ||
            die "$PG_DATA is not writable by $PG_OS_USER (is a parent directory mode 700?)"
    fi

    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        msg "initdb $PG_DATA"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 ||
            {
                log_tail "$LOG_DIR/initdb.log"
                die "initdb failed"
            }
    fi

    if pg_running; then
        local port
        port="$(pg_running_port)"
        [[ "$port" == "$PG_PORT" ]] ||
            die "postgres is already running on port $port, not $PG_PORT; run '$SELF stop' first"
        msg "postgres already running on 127.0.0.1:$PG_PORT"
    else
        msg "starting postgres on 127.0.0.1:$PG_PORT"
        # fsync=off: the data is throwaway test data; speed matters more than
        # surviving a power cut. max_connections=200: parallel tests with pools.
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" \
            -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DATA -c fsync=off -c max_connections=200" \
            start >/dev/null 2>&1 ||
            {
                log_tail "$PG_LOG"
                die "pg_ctl start failed"
            }
    fi

    # pg_ctl -w already waits, but check over TCP, which is what tests use.
    local i
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres && break
        sleep 0.5
    done
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres || {
        log_tail "$PG_LOG"
        die "postgres did not become ready on 127.0.0.1:$PG_PORT within ${READY_TIMEOUT}s"
    }

    if [[ "$(pg_psql postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
        msg "creating database $PG_DB"
        pg_psql postgres -c "CREATE DATABASE $PG_DB" >&2
    fi
    pg_psql "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS file_fdw" >&2
    # The loader runs `COPY ... FROM PROGRAM 'curl ...'`: prove the server can
    # run programs and finds curl on its PATH.
    pg_psql "$PG_DB" -c "COPY (SELECT 1) TO PROGRAM 'curl --version >/dev/null'" >/dev/null ||
        die "the postgres server cannot run curl (COPY TO PROGRAM failed)"
}

pg_stop() {
    if pg_running; then
        msg "stopping postgres"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null ||
            die "pg_ctl stop failed"
    else
        msg "postgres not running"
    fi
}

# ---------------------------------------------------------------------------
# s3s-fs
# ---------------------------------------------------------------------------
# Print the pid from our pid file if that process is alive and really is
# s3s-fs (pids get reused); otherwise print nothing.
s3_pid() {
    local pid cmd=
    [[ -f "$S3_PID_FILE" ]] || return 0
    pid="$(<"$S3_PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    # cmdline is NUL-separated; the first word must be an s3s-fs binary.
    # (A zombie or exited process has an empty cmdline.)
    IFS= read -r -d '' cmd <"/proc/$pid/cmdline" 2>/dev/null || true
    [[ "$(basename -- "$cmd")" == s3s-fs ]] || return 0
    printf '%s' "$pid"
}

# True if the process exists and is not a zombie.
proc_alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # drop "pid (comm) "; the state letter comes first
    [[ "${stat:0:1}" != Z ]]
}

# Any HTTP status (even 403) means the server answers; curl prints 000 otherwise.
s3_answers() {
    local code
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" || true)"
    [[ -n "$code" && "$code" != 000 ]]
}

# Fail early if a server that is not ours already answers on the S3 port.
s3_port_free() {
    if [[ -z "$(s3_pid)" ]] && s3_answers; then
        die "something else already answers on 127.0.0.1:$S3_PORT; set RELYT_S3_PORT"
    fi
}

s3_start() {
    local pid
    pid="$(s3_pid)"
    if [[ -n "$pid" ]]; then
        grep -qzx -- "$S3_PORT" "/proc/$pid/cmdline" ||
            die "s3s-fs (pid $pid) runs on another port than $S3_PORT; run '$SELF stop' first"
        msg "s3s-fs already running (pid $pid) on 127.0.0.1:$S3_PORT"
        return 0
    fi
    rm -f "$S3_PID_FILE"
    s3_port_free

    local bin
    bin="$(s3fs_bin)"
    msg "starting s3s-fs on 127.0.0.1:$S3_PORT (bucket $S3_BUCKET)"
    # setsid + nohup: detach from our session so that the server outlives this
    # shell and the job/process group that ran it. The child writes its own pid
    # and then execs s3s-fs, so the pid file names s3s-fs itself.
    setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$S3_PID_FILE" \
        "$bin" --host 127.0.0.1 --port "$S3_PORT" \
        --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$S3_ROOT" \
        </dev/null >>"$S3_LOG" 2>&1 &

    local i
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        sleep 0.25
        pid="$(s3_pid)"
        # Wait for the pid file and for the exec into s3s-fs to happen.
        if [[ -z "$pid" ]]; then
            # Give up early if the launched process died (gone or zombie).
            if [[ -f "$S3_PID_FILE" ]] && ! proc_alive "$(<"$S3_PID_FILE")"; then
                break
            fi
            continue
        fi
        s3_answers && return 0
    done
    log_tail "$S3_LOG"
    die "s3s-fs did not answer on 127.0.0.1:$S3_PORT within ${READY_TIMEOUT}s"
}

s3_stop() {
    local pid i
    pid="$(s3_pid)"
    if [[ -z "$pid" ]]; then
        msg "s3s-fs not running"
        rm -f "$S3_PID_FILE"
        return 0
    fi
    msg "stopping s3s-fs (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        proc_alive "$pid" || break
        sleep 0.25
    done
    if proc_alive "$pid"; then
        msg "s3s-fs ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$S3_PID_FILE"
}

# ---------------------------------------------------------------------------
# Environment for tests and examples
# ---------------------------------------------------------------------------
env_lines() {
    local name value
    for name in RELYT_SERVICES_DIR RELYT_TEST_DATABASE_URL RELYT_TEST_S3_ENDPOINT \
        RELYT_TEST_S3_ACCESS_KEY RELYT_TEST_S3_SECRET_KEY RELYT_TEST_S3_REGION RELYT_TEST_S3_BUCKET; do
        case "$name" in
        RELYT_SERVICES_DIR) value="$STATE" ;;
        RELYT_TEST_DATABASE_URL) value="postgres://$PG_SUPERUSER@127.0.0.1:$PG_PORT/$PG_DB" ;;
        RELYT_TEST_S3_ENDPOINT) value="http://127.0.0.1:$S3_PORT" ;;
        RELYT_TEST_S3_ACCESS_KEY) value="$S3_ACCESS_KEY" ;;
        RELYT_TEST_S3_SECRET_KEY) value="$S3_SECRET_KEY" ;;
        RELYT_TEST_S3_REGION) value="$S3_REGION" ;;
        RELYT_TEST_S3_BUCKET) value="$S3_BUCKET" ;;
        esac
        printf 'export %s=%q\n' "$name" "$value"
    done
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------
cmd_start() {
    ensure_packages
    ensure_s3fs
    make_state_dirs
    s3_port_free # before starting postgres, so a conflict leaves nothing half-started
    pg_start
    s3_start
    env_lines >"$ENV_FILE"
    msg "ready; state in $STATE; load the environment with: eval \"\$($SELF env)\""
}

cmd_stop() {
    local purge=
    case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) die "unknown option for stop: $1" ;;
    esac
    if [[ ! -d "$STATE" ]]; then
        msg "nothing to stop: $STATE does not exist"
        return 0
    fi
    pg_stop
    s3_stop
    if [[ -n "$purge" ]]; then
        # Only delete a directory this script created.
        [[ -f "$MARKER" ]] || die "refusing to purge $STATE: no $(basename "$MARKER") marker"
        msg "removing $STATE"
        rm -rf -- "$STATE"
    fi
}

cmd_status() {
    local ok=0 pid
    if pg_running; then
        msg "postgres: running on 127.0.0.1:$(pg_running_port) (data $PG_DATA)"
    else
        msg "postgres: not running"
        ok=1
    fi
    pid="$(s3_pid)"
    if [[ -n "$pid" ]]; then
        if s3_answers; then
            msg "s3s-fs:   running (pid $pid) on 127.0.0.1:$S3_PORT (root $S3_ROOT)"
        else
            msg "s3s-fs:   process $pid alive but not answering on 127.0.0.1:$S3_PORT"
            ok=1
        fi
    else
        msg "s3s-fs:   not running"
        ok=1
    fi
    return "$ok"
}

cmd_psql() {
    exec "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d "$PG_DB" "$@"
}

usage() {
    sed -n '4,12p' "$SELF" | sed 's/^# \{0,1\}//' >&2
}

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) env_lines ;;
    psql) cmd_psql "$@" ;;
    # Fault injection for tests: stop PostgreSQL at once (no shutdown checkpoint, connections
    # cut) or s3s-fs, and start either again.
    pg-kill)
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null ||
            die "pg_ctl stop -m immediate failed"
        ;;
    pg-start) pg_start ;;
    s3-stop) s3_stop ;;
    s3-start) s3_start ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage
        exit 2
        ;;
    esac
}

main "$@"
