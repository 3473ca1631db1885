-- relyt-sdk's own tables, in schema relyt_sys. Idempotent: the SDK applies this file at start
-- (unless told not to), and it can be run alone: psql -f migrations/0001_relyt_sys.sql
--
-- relyt_loader_job    one row per processor (process id): status and row counters, updated with
--                     atomic `SET n = n + $1`, never read-modify-write.
-- relyt_loader_file   one row per staged file: CREATED -> FROZEN -> IMPORTING -> IMPORTED | ERROR.
-- relyt_loader_reject one row per rejected record: file, line, raw record, SQLSTATE, message.
-- relyt_loader_checkpoint
--                     a view with the columns of relyt-loader-go's checkpoint table (file_details
--                     included, built from relyt_loader_file when read), so its monitoring
--                     queries keep working without a JSON array rewritten on every change.

CREATE SCHEMA IF NOT EXISTS relyt_sys;

CREATE TABLE IF NOT EXISTS relyt_sys.relyt_loader_job (
    process_id        text PRIMARY KEY,
    pg_table          text NOT NULL,
    status            text NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
    start_time        timestamptz NOT NULL DEFAULT now(),
    last_insert_time  timestamptz,
    end_time          timestamptz,
    rows_accepted     bigint NOT NULL DEFAULT 0,
    rows_imported     bigint NOT NULL DEFAULT 0,
    rows_rejected     bigint NOT NULL DEFAULT 0,
    error_message     text
);

CREATE TABLE IF NOT EXISTS relyt_sys.relyt_loader_file (
    process_id     text NOT NULL REFERENCES relyt_sys.relyt_loader_job (process_id) ON DELETE CASCADE,
    file_no        bigint NOT NULL,
    s3_key         text NOT NULL,
    status         text NOT NULL
                   CHECK (status IN ('CREATED', 'FROZEN', 'IMPORTING', 'IMPORTED', 'ERROR')),
    num_records    bigint NOT NULL DEFAULT 0,
    num_bytes      bigint NOT NULL DEFAULT 0,
    rows_imported  bigint NOT NULL DEFAULT 0,
    rows_rejected  bigint NOT NULL DEFAULT 0,
    -- Which processor instance committed the import: a retry after a lost COMMIT reply tells
    -- its own earlier commit from another process's (two processes resuming one job).
    imported_by    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    frozen_at      timestamptz,
    imported_at    timestamptz,
    error_message  text,
    PRIMARY KEY (process_id, file_no)
);

-- Columns added after the first version of this file (databases that ran it keep working).
ALTER TABLE relyt_sys.relyt_loader_file ADD COLUMN IF NOT EXISTS imported_by text;

CREATE INDEX IF NOT EXISTS relyt_loader_file_pending
    ON relyt_sys.relyt_loader_file (process_id, status)
    WHERE status IN ('FROZEN', 'IMPORTING');

CREATE TABLE IF NOT EXISTS relyt_sys.relyt_loader_reject (
    id           bigserial PRIMARY KEY,
    process_id   text NOT NULL REFERENCES relyt_sys.relyt_loader_job (process_id) ON DELETE CASCADE,
    file_no      bigint,
    line_no      bigint,
    raw_record   text,
    sqlstate     text,
    message      text NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS relyt_loader_reject_process
    ON relyt_sys.relyt_loader_reject (process_id, file_no, line_no);

CREATE OR REPLACE VIEW relyt_sys.relyt_loader_checkpoint AS
SELECT
    j.process_id,
    j.pg_table,
    j.status,
    j.start_time,
    j.last_insert_time,
    (SELECT count(*)::int FROM relyt_sys.relyt_loader_file f
      WHERE f.process_id = j.process_id) AS files_total,
    (SELECT count(*)::int FROM relyt_sys.relyt_loader_file f
      WHERE f.process_id = j.process_id AND f.status = 'IMPORTED') AS files_imported,
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'file_id', f.file_no,
                's3_key', f.s3_key,
                'status', f.status,
                'num_records', f.num_records,
                'created_at', f.created_at,
                'imported_at', f.imported_at,
                'error_message', f.error_message) ORDER BY f.file_no), '[]'::jsonb)
       FROM relyt_sys.relyt_loader_file f WHERE f.process_id = j.process_id) AS file_details,
    j.error_message,
    j.rows_rejected::int AS error_records,
    j.rows_accepted,
    j.rows_imported,
    j.rows_rejected,
    j.end_time
FROM relyt_sys.relyt_loader_job j;

-- COPY ... FROM PROGRAM for the server-pull import method. The program (curl with a presigned URL,
-- a bearer credential) arrives as a bound parameter, so it never appears in the text of a
-- statement that a client library logs; COPY takes no parameters of its own, hence EXECUTE.
-- SECURITY INVOKER (the default): the caller needs pg_execute_server_program or superuser, as for
-- a plain COPY FROM PROGRAM, so the function grants nothing.
CREATE OR REPLACE FUNCTION relyt_sys.copy_from_program(target regclass, columns text[], program text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    loaded bigint;
BEGIN
    EXECUTE format('COPY %s (%s) FROM PROGRAM %L (FORMAT csv)',
                   target,
                   (SELECT string_agg(quote_ident(c), ', ' ORDER BY n)
                      FROM unnest(columns) WITH ORDINALITY AS u(c, n)),
                   program);
    GET DIAGNOSTICS loaded = ROW_COUNT;
    RETURN loaded;
END
$$;
