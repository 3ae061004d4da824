"""Every SQL statement of the Postgres store and its run queue, as constants and small pure
functions (no I/O), but those that make and migrate the schema (`_migrations`).

Rules the statements keep: a terminal run status is final (statements that change a status
carry the condition, and a trigger refuses the change even to SQL typed by hand); a
per-superstep write (`PUT_CHECKPOINT`, `PUT_WRITES`) is one statement, one round trip; a write
for a run a worker holds carries its fencing epoch (`%(epoch)s`, NULL when the run is not held)
and takes effect only while `runs.epoch` still equals it. The arrays of a per-superstep write go
in binary (`%(name)b`): no escaping of each element on the way out, no parsing on the way in.
"""

from __future__ import annotations

from typing import Final

from tether.checkpoint import query
from tether.checkpoint.store_records import thread_order
from tether.types import RunStatus, sources

TERMINAL: Final = query.TERMINAL
"""The terminal statuses as an SQL list (`tether.types.TERMINAL_STATUSES`)."""
ACTIVE: Final = query.ACTIVE
"""Statuses that need a live process to move on (an `interrupted` run waits for input)."""
STARTABLE: Final = query.sql_list(sources(RunStatus.RUNNING))
"""Where `mark_running` starts a run from (`tether.types.TRANSITIONS`)."""
CANCELLABLE: Final = query.sql_list(sources(RunStatus.CANCELLING))
"""Where `request_cancel` moves a run from (`tether.types.TRANSITIONS`)."""

CANCEL_CHANNEL: Final = "tether_cancel"
"""`NOTIFY tether_cancel, '<run_id>'` is sent when a run's cancel request commits."""
QUEUE_CHANNEL: Final = "tether_queue"
"""Sent when a queued run is inserted or handed back, and when any run ends (a run waiting
behind it on its thread may now be claimed); the payload is the graph name or the run id."""

TERMINAL_SQLSTATE: Final = "TT001"
"""The error the terminal-status trigger raises (translated to `TerminalStatusError`)."""

# -- runs -------------------------------------------------------------------------------------

RUN_COLUMNS: Final = (
    "run_id, thread_id, status, reason, created_at, started_at, ended_at, checkpoint_id, "
    "error, cancel_latency_ms, metadata, failure"
)
"""The columns `RunInfo` is built from, in its field order (`failure`: node and traceback)."""

EVENTS_IN: Final = (
    "(SELECT j.item->>0 AS phase, (j.item->>1)::timestamptz AS at, j.item->>2 AS node, "
    "j.item->3 AS detail, j.ord FROM jsonb_array_elements(%(e_events)s::jsonb) "
    "WITH ORDINALITY AS j(item, ord)) AS e"
)
"""A batch of events as rows, in their order (`ORDER BY e.ord` keeps it in the log). The batch
is one JSON array of `[phase, at, node, detail]` (`rows.event_params`): one parameter to dump,
where four arrays cost psycopg a pass over every element each, and the `jsonb[]` an escape of
every quote of every detail (about 3,000 bytecodes for a run's end of three events)."""

INSERT_RUN: Final = (f"INSERT INTO runs ({RUN_COLUMNS}, owner, heartbeat_at) VALUES "
                     "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
GET_RUN: Final = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = %s"
LOCK_RUN: Final = f"SELECT {RUN_COLUMNS}, epoch FROM runs WHERE run_id = %s FOR UPDATE"

MARK_RUNNING: Final = f"""
WITH cur AS (SELECT epoch FROM runs WHERE run_id = %(run_id)s),
moved AS (
    UPDATE runs SET status = 'running', started_at = coalesce(started_at, %(now)s),
        owner = %(owner)s, heartbeat_at = %(now)s
    WHERE run_id = %(run_id)s AND reason IS NULL AND CASE
        WHEN %(epoch)s::bigint IS NULL THEN status IN {STARTABLE}
        ELSE epoch = %(epoch)s AND (status IN {STARTABLE} OR status = 'running') END
    RETURNING {RUN_COLUMNS}),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT moved.run_id, e.phase, e.at, e.node, e.detail FROM moved, {EVENTS_IN} ORDER BY e.ord)
SELECT (SELECT epoch FROM cur), moved.* FROM (SELECT 1) AS one LEFT JOIN moved ON true"""
"""`pending`/`interrupted` → `running`. A run held by a worker (epoch given) may also be
`running` already: the worker that re-claimed it after a crash adopts it. One row: the run's
epoch before the statement (NULL: no such run), then the run if it moved."""

REQUEST_CANCEL: Final = f"""
WITH moved AS (
    UPDATE runs SET status = 'cancelling', reason = %(reason)s
    WHERE run_id = %(run_id)s AND status IN {CANCELLABLE} AND reason IS NULL
    RETURNING {RUN_COLUMNS}),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT run_id, 'request', %(at)s, NULL, %(reason)s FROM moved)
SELECT {RUN_COLUMNS} FROM moved"""
"""Records the first request only (the condition decides races across processes); the trigger
`runs_notify_cancel` sends `NOTIFY tether_cancel` when it commits."""

FINISH_RUN: Final = f"""
WITH logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT %(run_id)s, e.phase, e.at, e.node, e.detail FROM {EVENTS_IN} ORDER BY e.ord)
UPDATE runs SET status = %(status)s, reason = coalesce(%(reason)s, reason), error = %(error)s,
    failure = %(failure)s, checkpoint_id = coalesce(%(checkpoint_id)s, checkpoint_id),
    ended_at = %(ended_at)s,
    cancel_latency_ms = %(latency)s, heartbeat_at = %(now)s, lease_expires_at = NULL
WHERE run_id = %(run_id)s AND status NOT IN {TERMINAL}
RETURNING {RUN_COLUMNS}"""
"""The status flip of `finish_run`, with its events; run after `LOCK_RUN` in its transaction."""

APPEND_EVENTS: Final = f"""
WITH fence AS (SELECT 1 FROM runs WHERE run_id = %(run_id)s AND epoch = %(epoch)s FOR SHARE),
allowed AS (SELECT %(epoch)s::bigint IS NULL OR EXISTS (SELECT 1 FROM fence) AS ok),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT %(run_id)s, e.phase, e.at, e.node, e.detail FROM allowed, {EVENTS_IN}
    WHERE allowed.ok ORDER BY e.ord)
SELECT ok FROM allowed"""
LIST_EVENTS: Final = "SELECT phase, at, node, detail FROM events WHERE run_id = %s ORDER BY id"


def list_runs(*, by_thread: bool, by_status: bool) -> str:
    """`SELECT` of runs newest first; parameters: [thread_id], [status], limit (NULL: none)."""
    where = []
    if by_thread:
        where.append("thread_id = %s")
    if by_status:
        where.append("status = %s")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {RUN_COLUMNS} FROM runs{clause} ORDER BY seq DESC LIMIT %s"


ACTIVE_RUNS: Final = f"""
SELECT owner, graph IS NOT NULL, lease_expires_at IS NULL OR lease_expires_at < now(),
    {RUN_COLUMNS}
FROM runs WHERE status IN {ACTIVE} AND (owner IS NOT NULL OR graph IS NOT NULL) ORDER BY seq"""
"""Active runs and who drives them: (owner, queued?, no live lease?, the run...)."""
MARK_ORPHANED: Final = f"""
WITH moved AS (
    UPDATE runs SET status = 'error', error = %(error)s, ended_at = %(now)s
    WHERE run_id = %(run_id)s AND owner = %(owner)s AND graph IS NULL AND status IN {ACTIVE}
    RETURNING {RUN_COLUMNS}),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT run_id, 'orphan', %(now)s, NULL, %(detail)s FROM moved)
SELECT {RUN_COLUMNS} FROM moved"""
"""Conditional on the same dead owner, so two processes reconciling at once mark a run once."""

# -- threads ----------------------------------------------------------------------------------

THREAD_COLUMNS: Final = "thread_id, created_at, updated_at, metadata"
PUT_THREAD: Final = (f"INSERT INTO threads ({THREAD_COLUMNS}) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (thread_id) DO UPDATE SET updated_at = excluded.updated_at, "
                     f"metadata = threads.metadata || excluded.metadata RETURNING {THREAD_COLUMNS}")
"""Create, or merge the metadata (a shallow merge, `||`) in the same statement."""
GET_THREAD: Final = """
SELECT t.thread_id, t.created_at, t.updated_at, t.metadata,
    (SELECT created_at FROM runs WHERE thread_id = %(t)s ORDER BY seq LIMIT 1),
    EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = %(t)s)
FROM (SELECT 1) AS one LEFT JOIN threads AS t ON t.thread_id = %(t)s"""
"""The record if any, else what a bare record needs: the first run's creation, or checkpoints."""


def _thread_filter(keys: int, ids: bool) -> str:
    """The `WHERE` of a thread search: with `ids`, an id in an array (the first parameter),
    then a metadata value per key (a key and a JSON value each; a missing key reads as
    null)."""
    tests = ["thread_id = ANY(%s::text[])"] if ids else []
    return " AND ".join(tests + ["coalesce(metadata -> %s, 'null') = %s"] * keys) or "true"


def search_threads(keys: int, ids: bool = False,
                   order: str = thread_order("updated_at", ascending=False)) -> str:
    """Threads that match (`_thread_filter`), ordered by `order` (`thread_order`; the
    default, latest update first with ties by id, and its reverse are served by
    `threads_by_update`, schema version 5), paged: the filter's parameters, limit, offset."""
    return (f"SELECT {THREAD_COLUMNS} FROM threads WHERE {_thread_filter(keys, ids)} "
            f"ORDER BY {order} LIMIT %s OFFSET %s")


def count_threads(keys: int, ids: bool = False) -> str:
    """How many threads match (`_thread_filter`)."""
    return f"SELECT count(*) FROM threads WHERE {_thread_filter(keys, ids)}"


LIST_THREADS: Final = """
SELECT thread_id FROM (
    SELECT thread_id, max(checkpoint_id) AS at FROM checkpoints GROUP BY thread_id
    UNION ALL SELECT thread_id, '' FROM runs WHERE thread_id IS NOT NULL
) AS t GROUP BY thread_id ORDER BY max(at) DESC, thread_id LIMIT %s"""
"""Threads most recently checkpointed first (UUIDv7 ids sort by time); run-only ones last."""

# -- checkpoints ------------------------------------------------------------------------------

PUT_CHECKPOINT: Final = f"""
WITH fence AS (
    UPDATE runs SET heartbeat_at = %(now)s, checkpoint_id = CASE
        WHEN %(root)s AND status NOT IN {TERMINAL} THEN %(id)s ELSE checkpoint_id END
    WHERE run_id = %(run_id)s AND (%(root)s OR %(epoch)s::bigint IS NOT NULL)
        AND (%(epoch)s::bigint IS NULL OR epoch = %(epoch)s)
    RETURNING reason),
allowed AS (SELECT %(epoch)s::bigint IS NULL OR EXISTS (SELECT 1 FROM fence) AS ok),
saved AS (
    INSERT INTO checkpoints (thread_id, ns, checkpoint_id, parent_id, step, source, created_at,
        next, metadata, run_id, refs)
    SELECT %(thread_id)s, %(ns)s, %(id)s, %(parent_id)s, %(step)s, %(source)s, %(created_at)s,
        %(next)s, %(metadata)s, %(run_id)s, %(refs)s FROM allowed WHERE ok
    ON CONFLICT DO NOTHING),
valued AS (
    INSERT INTO blobs (thread_id, ns, checkpoint_id, channel, value)
    SELECT %(thread_id)s, %(ns)s, %(id)s, b.channel, b.value
    FROM allowed, unnest(%(channels)b::text[], %(values)b::bytea[]) AS b(channel, value)
    WHERE ok ON CONFLICT DO NOTHING)
SELECT ok, (SELECT reason FROM fence) FROM allowed"""
"""One checkpoint, its blobs and its run's pointer in one statement: a superstep's single round
trip. Idempotent (a checkpoint id names one immutable snapshot). Returns (stored?, the run's
cancel reason): a worker learns of a durable cancel at every step for free."""

PUT_WRITES: Final = """
WITH fence AS (SELECT 1 FROM runs WHERE run_id = %(run_id)s AND epoch = %(epoch)s FOR SHARE),
allowed AS (SELECT %(epoch)s::bigint IS NULL OR EXISTS (SELECT 1 FROM fence) AS ok),
target AS (
    SELECT 1 FROM checkpoints
    WHERE thread_id = %(thread_id)s AND ns = %(ns)s AND checkpoint_id = %(checkpoint_id)s),
stored AS (
    INSERT INTO writes (thread_id, ns, checkpoint_id, task_id, idx, task_name, channel, value)
    SELECT %(thread_id)s, %(ns)s, %(checkpoint_id)s, w.task_id, w.idx, w.task_name, w.channel,
        w.value
    FROM allowed, unnest(%(task_ids)b::text[], %(idxs)b::integer[], %(names)b::text[],
        %(channels)b::text[], %(values)b::bytea[]) WITH ORDINALITY
        AS w(task_id, idx, task_name, channel, value, ord)
    WHERE ok ORDER BY w.ord
    ON CONFLICT (thread_id, ns, checkpoint_id, task_id, idx) DO UPDATE SET
        task_name = excluded.task_name, channel = excluded.channel, value = excluded.value
        WHERE excluded.idx < 0)
SELECT ok, EXISTS (SELECT 1 FROM target) FROM allowed"""
"""Insert-if-absent for a task's ordinary writes (idx >= 0: the first stored wins, so a retry
cannot change it); replace for control writes (idx < 0), which record the task's latest fate.
A missing checkpoint fails the foreign key (or reads as False when there are no writes)."""

_RESOLVED: Final = """
SELECT c.thread_id, c.ns, c.checkpoint_id, c.parent_id, c.step, c.source, c.created_at, c.next,
    c.metadata, c.run_id, c.refs, b.channels, b.vals, w.task_ids, w.names, w.idxs, w.channels,
    w.vals
FROM checkpoints AS c
LEFT JOIN LATERAL (
    SELECT array_agg(bl.channel) AS channels, array_agg(bl.value) AS vals
    FROM jsonb_each_text(c.refs) AS r(channel, ref)
    JOIN blobs AS bl ON bl.thread_id = c.thread_id AND bl.ns = c.ns AND bl.channel = r.channel
        AND bl.checkpoint_id = CASE WHEN r.ref = '' THEN c.checkpoint_id ELSE r.ref END
) AS b ON true
LEFT JOIN LATERAL (
    SELECT array_agg(wr.task_id ORDER BY wr.seq) AS task_ids,
        array_agg(wr.task_name ORDER BY wr.seq) AS names,
        array_agg(wr.idx ORDER BY wr.seq) AS idxs,
        array_agg(wr.channel ORDER BY wr.seq) AS channels,
        array_agg(wr.value ORDER BY wr.seq) AS vals
    FROM writes AS wr
    WHERE wr.thread_id = c.thread_id AND wr.ns = c.ns AND wr.checkpoint_id = c.checkpoint_id
) AS w ON true"""
"""A checkpoint with the blobs its refs point at and its pending writes: one round trip."""

LIST_CHANNEL_WRITES: Final = """
SELECT task_id, task_name, idx, channel, value FROM writes
WHERE thread_id = %s AND ns = %s AND checkpoint_id = %s AND channel = %s ORDER BY seq"""
"""One channel's writes of a checkpoint, in the order `_RESOLVED` gives them."""

GET_CHECKPOINT: Final = (
    f"{_RESOLVED} WHERE c.thread_id = %s AND c.ns = %s AND c.checkpoint_id = %s"
)
GET_LATEST_CHECKPOINT: Final = (
    f"{_RESOLVED} WHERE c.thread_id = %s AND c.ns = %s ORDER BY c.checkpoint_id DESC LIMIT 1"
)


def list_checkpoints(*, before: bool) -> str:
    """A page of a thread's checkpoints, newest first; parameters: thread, ns, [before], limit."""
    clause = " AND c.checkpoint_id < %s" if before else ""
    return (f"{_RESOLVED} WHERE c.thread_id = %s AND c.ns = %s{clause} "
            "ORDER BY c.checkpoint_id DESC LIMIT %s")


# -- deleting ---------------------------------------------------------------------------------

COPY_THREAD: Final = """
WITH fresh AS (SELECT NOT EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = %(t)s) AS ok),
copied AS (
    INSERT INTO checkpoints (thread_id, ns, checkpoint_id, parent_id, step, source, created_at,
        next, metadata, run_id, refs)
    SELECT %(t)s, ns, checkpoint_id, parent_id, step, source, created_at, next, metadata, NULL,
        refs FROM checkpoints, fresh WHERE thread_id = %(s)s AND fresh.ok
    RETURNING 1)
SELECT (SELECT ok FROM fresh), (SELECT count(*) FROM copied)"""
"""A thread's checkpoints under another thread id, none a run's (`run_id` NULL), unless that
one has checkpoints already (then nothing, and `ok` false); then, in the same transaction,
`COPY_THREAD_VALUES`."""
COPY_THREAD_VALUES: Final = """
WITH blobs_copied AS (
    INSERT INTO blobs (thread_id, ns, checkpoint_id, channel, value)
    SELECT %(t)s, ns, checkpoint_id, channel, value FROM blobs WHERE thread_id = %(s)s)
INSERT INTO writes (thread_id, ns, checkpoint_id, task_id, idx, task_name, channel, value)
SELECT %(t)s, ns, checkpoint_id, task_id, idx, task_name, channel, value FROM writes
WHERE thread_id = %(s)s ORDER BY seq"""
"""The blobs and pending writes (in their order) of the copied checkpoints."""
DELETE_THREAD: Final = """
WITH cut AS (DELETE FROM checkpoints WHERE thread_id = %(t)s),
doomed AS (DELETE FROM runs WHERE thread_id = %(t)s RETURNING run_id),
logs AS (DELETE FROM events WHERE run_id IN (SELECT run_id FROM doomed)),
record AS (DELETE FROM threads WHERE thread_id = %(t)s)
SELECT 1"""
"""Blobs and writes go with their checkpoints (ON DELETE CASCADE)."""
DELETE_RUN: Final = f"""
WITH cur AS (SELECT status FROM runs WHERE run_id = %(r)s),
gone AS (
    DELETE FROM runs WHERE run_id = %(r)s AND (status IN {TERMINAL} OR status = 'interrupted')
    RETURNING 1),
logs AS (DELETE FROM events WHERE run_id = %(r)s AND EXISTS (SELECT 1 FROM gone))
SELECT (SELECT status FROM cur), EXISTS (SELECT 1 FROM gone)"""
"""Only an ended or paused run; returns (its status or NULL, deleted?)."""
THREAD_OF_RUN: Final = "SELECT thread_id FROM runs WHERE run_id = %s"
DELETE_RUN_CHECKPOINTS: Final = "DELETE FROM checkpoints WHERE thread_id = %s AND run_id = %s"
"""Searches only the run's thread (a primary-key prefix)."""
DELETE_UNKNOWN_RUN_CHECKPOINTS: Final = "DELETE FROM checkpoints WHERE run_id = %s"
"""For checkpoints whose run has no record: a scan of every thread."""

# -- the run queue ----------------------------------------------------------------------------

LOCK_THREAD: Final = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 42))"
"""Serializes the starts of runs on one thread (multitask rules) across processes."""
ACTIVE_ON_THREAD: Final = (f"SELECT run_id FROM runs WHERE thread_id = %s "
                           f"AND status IN {ACTIVE} ORDER BY seq")
SUPERSEDE: Final = f"""
WITH moved AS (
    UPDATE runs SET status = 'cancelling', reason = %(reason)s
    WHERE run_id = ANY(%(ids)s) AND status NOT IN {TERMINAL} AND reason IS NULL
    RETURNING run_id),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT run_id, 'request', %(at)s, NULL, %(reason)s FROM moved)
SELECT run_id FROM moved"""
"""Cancel request for the runs a new run interrupts (`multitask_strategy` interrupt/rollback)."""
INSERT_QUEUED: Final = f"""
WITH busy AS (
    SELECT coalesce(array_agg(run_id ORDER BY seq), ARRAY[]::text[]) AS ids FROM runs
    WHERE %(unless_busy)s AND thread_id = %(thread_id)s AND status IN {ACTIVE}),
queued AS (
    INSERT INTO runs ({RUN_COLUMNS}, owner, heartbeat_at, graph, job, config, priority,
        enqueued_at, deadline_at, supersedes, multitask)
    SELECT %(run_id)s, %(thread_id)s, 'pending', NULL, %(created_at)s::timestamptz, NULL, NULL,
        NULL, NULL, NULL, %(metadata)s::jsonb, NULL, NULL, NULL, %(graph)s, %(job)s,
        %(config)s::jsonb, %(priority)s, now(), now() + make_interval(secs => %(timeout)s),
        %(supersedes)s::text[], %(multitask)s
    FROM busy WHERE cardinality(busy.ids) = 0
    RETURNING {RUN_COLUMNS}),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT run_id, 'create', created_at, NULL, jsonb_build_object(
        'queued', true, 'graph', %(graph)s::text, 'priority', %(priority)s::integer)
    FROM queued)
SELECT (SELECT ids FROM busy), queued.* FROM (SELECT 1) AS one LEFT JOIN queued ON true"""
"""A run queued for workers; its deadline counts from now, in the database's clock. With
`unless_busy` (`multitask_strategy="reject"`) it is queued only if its thread has no run in
flight: the check and the insert are one statement, one round trip. One row: the thread's runs
in flight that kept it out (empty when queued), then the run if it was queued."""

_CLAIMED_RUN: Final = ", ".join(f"r.{c} AS run_{c}" for c in RUN_COLUMNS.split(", "))
_CLAIMED_RUN_OUT: Final = ", ".join(f"run_{c}" for c in RUN_COLUMNS.split(", "))
CLAIM: Final = f"""
WITH picked AS (
    SELECT r.run_id, r.status FROM runs AS r
    WHERE r.graph = ANY(%(graphs)s) AND r.reason IS NULL AND r.status IN ('pending', 'running')
        AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())
        AND NOT r.run_id = ANY(%(held)s::text[])
        AND (r.deadline_at IS NULL OR r.deadline_at > now())
        AND NOT EXISTS (
            SELECT 1 FROM runs AS p
            WHERE p.thread_id = r.thread_id AND p.seq < r.seq AND p.status IN {ACTIVE})
    ORDER BY r.priority DESC, r.seq LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE runs AS r SET lease_owner = %(owner)s, epoch = r.epoch + 1,
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        status = CASE WHEN %(start)s THEN 'running' ELSE r.status END,
        started_at = CASE WHEN %(start)s THEN coalesce(r.started_at, %(now)s)
            ELSE r.started_at END,
        owner = CASE WHEN %(start)s THEN %(process)s ELSE r.owner END,
        heartbeat_at = CASE WHEN %(start)s THEN %(now)s ELSE r.heartbeat_at END
    FROM picked WHERE r.run_id = picked.run_id
    RETURNING r.run_id, r.thread_id, r.graph, r.job, r.config, r.epoch, picked.status AS was,
        r.checkpoint_id, r.supersedes, r.multitask,
        extract(epoch FROM r.deadline_at - now())::float8 AS remaining, r.priority, r.seq,
        {_CLAIMED_RUN}),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT run_id, phase, %(now)s, NULL, detail FROM (
        SELECT run_id, 1 AS ord, 'claim' AS phase, jsonb_build_object(
            'owner', %(owner)s::text, 'epoch', epoch, 'resumed', was <> 'pending') AS detail
        FROM claimed
        UNION ALL
        SELECT run_id, 2, 'start', '{{}}'::jsonb FROM claimed WHERE %(start)s) AS e
    ORDER BY run_id, ord)
SELECT run_id, thread_id, graph, job, config, epoch, was, checkpoint_id, supersedes,
    multitask, remaining, {_CLAIMED_RUN_OUT}
FROM claimed ORDER BY priority DESC, seq"""
"""Claim up to `limit` runs: queued or abandoned (lease lapsed), not cancelled, not overdue,
not still winding down in this worker (`held`), first on their thread. `SKIP LOCKED` lets
workers claim side by side; each claim takes the lease and a new epoch, logged (`claim`).
With `start`, the claim is also the run's start (`running`, owned by `process`, logged
`start`), as `MARK_RUNNING` would record it a round trip later. Each row ends with the run's
record as the claim left it (`RUN_COLUMNS`)."""

CANCEL_REQUESTS: Final = f"""
SELECT run_id, reason FROM runs
WHERE run_id = ANY(%s::text[]) AND reason IS NOT NULL AND status NOT IN {TERMINAL}"""
"""The durable cancel reasons of the runs in flight among those asked for (one statement for
all the live runs a process polls)."""

RENEW: Final = f"""
UPDATE runs AS r SET lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM unnest(%(ids)s::text[], %(epochs)s::bigint[]) AS l(run_id, epoch)
WHERE r.run_id = l.run_id AND r.epoch = l.epoch AND r.status NOT IN {TERMINAL}
RETURNING r.run_id, r.reason"""
"""Extend the leases still held (same epoch); returns each with its cancel reason, so every
renewal is also a poll for cancels. A run missing from the answer is lost (or ended)."""

RELEASE: Final = f"""
WITH released AS (
    UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, epoch = epoch + 1
    WHERE run_id = %(run_id)s AND epoch = %(epoch)s AND status NOT IN {TERMINAL}
    RETURNING run_id, graph, epoch),
logged AS (
    INSERT INTO events (run_id, phase, at, node, detail)
    SELECT run_id, 'release', %(now)s, NULL, jsonb_build_object(
        'owner', %(owner)s::text, 'epoch', epoch, 'why', %(why)s::text) || %(detail)s::jsonb
    FROM released)
SELECT released.run_id FROM released, LATERAL (SELECT pg_notify('{QUEUE_CHANNEL}', graph)) AS n"""
"""Hand a run back to the queue: the lease is dropped and the epoch moves on, so nothing the
releasing worker still tries to write for it is accepted; the next claim resumes it."""
START_FAILURES: Final = """SELECT count(*) FROM events
WHERE run_id = %s AND phase = 'release' AND detail ? 'start_failed'"""
"""How many times a run was handed back because it failed before its first step."""

SWEEPABLE: Final = f"""
SELECT {RUN_COLUMNS}, config -> 'timeout' FROM runs
WHERE graph IS NOT NULL AND status IN {ACTIVE}
    AND (lease_expires_at IS NULL OR lease_expires_at < now())
    AND (reason IS NOT NULL OR deadline_at < now())
    AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s)
ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED"""
"""Queued runs no live worker holds that must end: a cancel is durable, or the deadline
passed. Locked for the sweeper's transaction; rows another sweeper holds are skipped."""

LISTEN: Final = (f"LISTEN {CANCEL_CHANNEL}", f"LISTEN {QUEUE_CHANNEL}")
"""What a worker's listening connection subscribes to."""

WATCH: Final = """
SELECT r.run_id, r.status, r.checkpoint_id,
    (SELECT max(e.id) FROM events AS e WHERE e.run_id = r.run_id)
FROM runs AS r WHERE r.run_id = ANY(%s)"""
EVENTS_AFTER: Final = """
SELECT e.id, e.run_id, e.phase, e.at, e.node, e.detail
FROM unnest(%s::text[], %s::bigint[]) AS c(run_id, after)
JOIN events AS e ON e.run_id = c.run_id AND e.id > c.after ORDER BY e.id"""
"""Each run's events after its own cursor, for many runs in one round trip."""
