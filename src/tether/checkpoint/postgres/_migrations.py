"""The statements that make and migrate the Postgres schema of the store and its run queue, as
constants and small pure functions (no I/O); `schema` runs them. The others are in `_sql`.

Migrations are append-only: a released step is never edited, only followed by a new one.
"""

from __future__ import annotations

import re
from typing import Final

from tether.checkpoint.postgres._sql import (
    ACTIVE,
    CANCEL_CHANNEL,
    QUEUE_CHANNEL,
    TERMINAL,
    TERMINAL_SQLSTATE,
)

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

SCHEMA_V1: Final[tuple[str, ...]] = (
    # `seq` gives the creation order (`list_runs` is newest first, the queue is FIFO within a
    # priority). `owner`/`heartbeat_at`: the process driving a run in-process and its last write.
    # The queue columns are set for runs queued for workers (`graph` not NULL): `job` holds the
    # serialized input and options, `lease_owner`/`lease_expires_at` the worker holding the run,
    # and `epoch` the fencing token, incremented by every claim and hand-back.
    """CREATE TABLE runs (
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE, run_id text PRIMARY KEY,
        thread_id text, status text NOT NULL, reason jsonb, created_at timestamptz NOT NULL,
        started_at timestamptz, ended_at timestamptz, checkpoint_id text, error text,
        cancel_latency_ms double precision, metadata jsonb NOT NULL DEFAULT '{}',
        owner text, heartbeat_at timestamptz,
        graph text, job bytea, config jsonb, priority integer NOT NULL DEFAULT 0,
        enqueued_at timestamptz, deadline_at timestamptz,
        supersedes text[] NOT NULL DEFAULT '{}', multitask text,
        lease_owner text, lease_expires_at timestamptz, epoch bigint NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX runs_by_thread ON runs (thread_id, seq)",
    "CREATE INDEX runs_by_status ON runs (status, seq)",
    # Per-step updates (checkpoint pointer, heartbeat, lease) touch no indexed column, so they
    # are HOT updates that leave every index alone.
    f"""CREATE INDEX runs_queued ON runs (priority DESC, seq)
        WHERE graph IS NOT NULL AND status IN {ACTIVE}""",
    f"""CREATE FUNCTION tether_terminal_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'tether: a terminal run status cannot be changed (run %, %)',
                OLD.run_id, OLD.status USING ERRCODE = '{TERMINAL_SQLSTATE}';
        END $$""",
    f"""CREATE TRIGGER runs_terminal_status_is_final
        BEFORE UPDATE OF status ON runs FOR EACH ROW
        WHEN (OLD.status IN {TERMINAL} AND NEW.status IS DISTINCT FROM OLD.status)
        EXECUTE FUNCTION tether_terminal_is_final()""",
    f"""CREATE FUNCTION tether_notify_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CANCEL_CHANNEL}', NEW.run_id);
            RETURN NULL;
        END $$""",
    """CREATE TRIGGER runs_notify_cancel
        AFTER UPDATE OF reason ON runs FOR EACH ROW
        WHEN (OLD.reason IS NULL AND NEW.reason IS NOT NULL)
        EXECUTE FUNCTION tether_notify_cancel()""",
    f"""CREATE FUNCTION tether_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{QUEUE_CHANNEL}', coalesce(NEW.graph, NEW.run_id));
            RETURN NULL;
        END $$""",
    """CREATE TRIGGER runs_notify_queued
        AFTER INSERT ON runs FOR EACH ROW WHEN (NEW.graph IS NOT NULL)
        EXECUTE FUNCTION tether_notify_queue()""",
    f"""CREATE TRIGGER runs_notify_ended
        AFTER UPDATE OF status ON runs FOR EACH ROW
        WHEN (NEW.status IN {TERMINAL} AND OLD.status NOT IN {TERMINAL}
              AND NEW.thread_id IS NOT NULL)
        EXECUTE FUNCTION tether_notify_queue()""",
    # `id` orders the log (a run's events are appended by one writer at a time, plus cancel
    # requests); no foreign key to `runs`: the log accepts events for any id, as the protocol.
    """CREATE TABLE events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text NOT NULL,
        phase text NOT NULL, at timestamptz NOT NULL, node text, detail jsonb NOT NULL
    )""",
    "CREATE INDEX events_by_run ON events (run_id, id)",
    # `refs` maps every channel to the checkpoint that stored its value ('' for itself): a
    # checkpoint stores only the blobs of the channels that changed since its parent.
    """CREATE TABLE checkpoints (
        thread_id text NOT NULL, ns text NOT NULL, checkpoint_id text NOT NULL,
        parent_id text, step integer NOT NULL, source text NOT NULL,
        created_at timestamptz NOT NULL, next bytea NOT NULL, metadata bytea NOT NULL,
        run_id text, refs jsonb NOT NULL,
        PRIMARY KEY (thread_id, ns, checkpoint_id)
    )""",
    """CREATE TABLE blobs (
        thread_id text NOT NULL, ns text NOT NULL, checkpoint_id text NOT NULL,
        channel text NOT NULL, value bytea NOT NULL,
        PRIMARY KEY (thread_id, ns, checkpoint_id, channel),
        FOREIGN KEY (thread_id, ns, checkpoint_id)
            REFERENCES checkpoints (thread_id, ns, checkpoint_id) ON DELETE CASCADE
    )""",
    # `seq` keeps insertion order; an upsert keeps a row's seq, so a replaced control write
    # stays where the task's first write was (as in memory and SQLite).
    """CREATE TABLE writes (
        seq bigint GENERATED ALWAYS AS IDENTITY,
        thread_id text NOT NULL, ns text NOT NULL, checkpoint_id text NOT NULL,
        task_id text NOT NULL, idx integer NOT NULL, task_name text NOT NULL,
        channel text NOT NULL, value bytea NOT NULL,
        PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx),
        FOREIGN KEY (thread_id, ns, checkpoint_id)
            REFERENCES checkpoints (thread_id, ns, checkpoint_id) ON DELETE CASCADE
    )""",
    """CREATE TABLE threads (
        thread_id text PRIMARY KEY, created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL, metadata jsonb NOT NULL DEFAULT '{}'
    )""",
)

SCHEMA_V2: Final[tuple[str, ...]] = (
    # {"node": ..., "traceback": ...} of a run that ended `error`; NULL otherwise.
    "ALTER TABLE runs ADD COLUMN failure jsonb",
)

# Values stored before checksums go behind their frame (`serde.frame`: 0xC1 0x01, then the
# big-endian CRC-32 of the value), computed by a function of this session only.
_FRAMED = "pg_temp.tether_frame({})"
SCHEMA_V3: Final[tuple[str, ...]] = (
    """CREATE FUNCTION pg_temp.tether_frame(data bytea) RETURNS bytea LANGUAGE plpgsql
        IMMUTABLE STRICT AS $$
        DECLARE crc bigint := 4294967295; i integer; j integer;
        BEGIN
            FOR i IN 0 .. length(data) - 1 LOOP
                crc := crc # get_byte(data, i);
                FOR j IN 1 .. 8 LOOP crc := (crc >> 1) # (3988292384 * (crc & 1)); END LOOP;
            END LOOP;
            RETURN '\\xc101'::bytea || substring(int8send(crc # 4294967295) FROM 5) || data;
        END $$""",
    f"UPDATE blobs SET value = {_FRAMED.format('value')}",
    f"UPDATE writes SET value = {_FRAMED.format('value')}",
    f"UPDATE checkpoints SET next = {_FRAMED.format('next')}, "
    f"metadata = {_FRAMED.format('metadata')}",
    f"UPDATE runs SET job = {_FRAMED.format('job')} WHERE job IS NOT NULL",
    "DROP FUNCTION pg_temp.tether_frame(bytea)",
)

SCHEMA_V4: Final[tuple[str, ...]] = (
    # A run that stops needing a process (it ended, or it waits for input) frees its thread,
    # and only the runs queued behind it on that thread gain from a wake-up: the workers are
    # told only when there is one (a run that ends alone on its thread, the usual run, wakes
    # no worker; its own worker claims again when it lets the run go). Before, every run end
    # woke every worker, and a pause woke none. A run queued behind it between this check and
    # the end's commit (its insert sends its own wake-up, too early to claim it) is claimed by
    # the ending run's worker, which claims once it has let the run go, or by the next poll.
    # (Safe to apply again.)
    f"""CREATE OR REPLACE FUNCTION tether_notify_successor() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM runs WHERE thread_id = NEW.thread_id
                       AND seq > NEW.seq AND status IN {ACTIVE} AND graph IS NOT NULL) THEN
                PERFORM pg_notify('{QUEUE_CHANNEL}', coalesce(NEW.graph, NEW.run_id));
            END IF;
            RETURN NULL;
        END $$""",
    "DROP TRIGGER IF EXISTS runs_notify_ended ON runs",
    f"""CREATE TRIGGER runs_notify_ended
        AFTER UPDATE OF status ON runs FOR EACH ROW
        WHEN (OLD.status IN {ACTIVE} AND NEW.status NOT IN {ACTIVE}
              AND NEW.thread_id IS NOT NULL)
        EXECUTE FUNCTION tether_notify_successor()""",
)

SCHEMA_V5: Final[tuple[str, ...]] = (
    # A search of threads (`search_threads`: latest update first, ties by id, paged) can walk
    # this index from its newest entry and stop at `offset + limit` matches, where it read and
    # sorted every thread. The planner picks the walk or the scan by its guess of how many
    # threads a metadata filter matches (one in 200: it keeps no statistics on metadata keys).
    # Measured with 50,000 threads, a page of 10 (medians): 5.4 -> 0.2 ms unfiltered, 12.7 ->
    # 0.26 ms for a key one thread in ten has; a rarer key, or a page deep in a filtered
    # search, is still a scan (13-14 ms), and a key that no thread has is walked to the end
    # (12.5 -> 14.4 ms). Ascending, walked backwards: a thread made or updated goes at its end,
    # and the pages it leaves behind stay full (2.0 MB for those threads; a descending one fed
    # the same way took 3.7 MB). Built in the migration's transaction, which holds writes to
    # `threads` meanwhile (25 ms for 50,000). (Safe to apply again.)
    "CREATE INDEX IF NOT EXISTS threads_by_update ON threads (updated_at, thread_id DESC)",
)

MIGRATIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("initial schema: runs and their queue, events, checkpoints, blobs, writes, threads",
     SCHEMA_V1),
    ("where a failed run failed: its node and traceback", SCHEMA_V2),
    ("a checksum on every stored value", SCHEMA_V3),
    ("a run that frees its thread wakes the workers only for a run queued behind it",
     SCHEMA_V4),
    ("threads searched newest first by an index, not a scan and a sort", SCHEMA_V5),
)
"""(description, statements) per schema version; version N is `MIGRATIONS[N - 1]`."""

VERSION_TABLE: Final = "tether_schema"
CREATE_VERSION_TABLE: Final = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer PRIMARY KEY, "
    "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
GET_VERSION: Final = f"SELECT CASE WHEN to_regclass('{VERSION_TABLE}') IS NULL THEN 0 END"
"""0 when the schema has no version table yet; NULL when it has (then read `MAX_VERSION`)."""
MAX_VERSION: Final = f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}"
RECORD_VERSION: Final = f"INSERT INTO {VERSION_TABLE} (version, description) VALUES (%s, %s)"
LOCK_MIGRATIONS: Final = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))"
"""Serializes processes migrating one schema (by name) at once; released at commit."""


def create_schema(name: str) -> str:
    """`CREATE SCHEMA IF NOT EXISTS name`; ValueError unless `checked_schema(name)` passes."""
    return f"CREATE SCHEMA IF NOT EXISTS {checked_schema(name)}"


def checked_schema(name: str) -> str:
    """`name` if it is a plain identifier (usable unquoted in `search_path`), else ValueError."""
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"schema name {name!r} must be letters, digits and underscores")
    return name
