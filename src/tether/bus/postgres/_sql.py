"""Every SQL statement of the Postgres bus (no I/O).

The bus keeps its own table, `bus_events`, beside the store's tables (in the same schema, made
on first use): it is UNLOGGED, so writing it costs no WAL — a crash of the database server
empties it, which loses stream history, never a run's record or checkpoints.
"""

from __future__ import annotations

import re
from typing import Final

from tether.bus.event import END_EVENT

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def create_schema(schema: str) -> str:
    """`CREATE SCHEMA IF NOT EXISTS` for a plain identifier.

    Raises:
        ValueError: `schema` is not a plain identifier (letters, digits, `_`).
    """
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema {schema!r} is not a plain identifier (letters, digits, _)")
    return f'CREATE SCHEMA IF NOT EXISTS "{schema}"'


SETUP_LOCK: Final = "SELECT pg_advisory_xact_lock(hashtext('tether_bus_setup'))"
"""Taken first in the setup's transaction: concurrent `CREATE ... IF NOT EXISTS` can collide."""

SETUP: Final[tuple[str, ...]] = (
    """CREATE UNLOGGED TABLE IF NOT EXISTS bus_events (
        run_id text NOT NULL,
        seq bigint NOT NULL,
        event text NOT NULL,
        data bytea NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, seq))""",
    f"""CREATE INDEX IF NOT EXISTS bus_events_ended ON bus_events (at)
        WHERE event = '{END_EVENT}'""",
)
"""The table, made on first use in each process (after `SETUP_LOCK`)."""

APPEND: Final = """
WITH added AS (
    INSERT INTO bus_events (run_id, seq, event, data)
    SELECT u.run_id, u.seq, u.event, u.data
    FROM unnest(%(runs)s::text[], %(seqs)s::bigint[], %(events)s::text[], %(datas)s::bytea[])
        AS u(run_id, seq, event, data)
    ON CONFLICT DO NOTHING
    RETURNING run_id, seq
), sent AS (
    SELECT pg_notify(n.channel, n.payload)
    FROM unnest(%(senders)s::text[], %(channels)s::text[], %(payloads)s::text[])
        WITH ORDINALITY AS n(run_id, channel, payload, i)
    WHERE EXISTS (SELECT 1 FROM added WHERE added.run_id = n.run_id)
    ORDER BY n.i
)
SELECT added.run_id, added.seq FROM added, (SELECT count(*) FROM sent) AS s
"""
"""Store the batches of several runs and notify each run's channel, in one statement (one round
trip, one commit: the notifications are sent when the rows are visible, in the order given).
Nothing is sent for a run whose every offset was taken already. Rows: the offsets stored."""

READ: Final = """
SELECT seq, event, data FROM bus_events
WHERE run_id = %(run_id)s AND seq > %(after)s AND (%(upto)s::bigint IS NULL OR seq <= %(upto)s)
ORDER BY seq LIMIT %(limit)s
"""

LAST: Final = """
SELECT seq, event, data FROM bus_events WHERE run_id = %(run_id)s ORDER BY seq DESC LIMIT 1
"""

NOTIFY: Final = "SELECT pg_notify(%(channel)s, %(payload)s)"

TRIM: Final = f"""
WITH gone AS (
    DELETE FROM bus_events AS b
    USING (SELECT run_id FROM bus_events
           WHERE event = '{END_EVENT}' AND at < now() - make_interval(secs => %(retain)s)) AS e
    WHERE b.run_id = e.run_id
    RETURNING 1)
SELECT count(*) FROM gone
"""
"""Forget the events of runs whose run-ended signal is older than `retain` seconds."""

CURRENT_SCHEMA: Final = "SELECT current_schema()"

__all__ = ["APPEND", "CURRENT_SCHEMA", "LAST", "NOTIFY", "READ", "SETUP", "SETUP_LOCK", "TRIM",
           "create_schema"]
