"""Every SQL statement of the SQLite store, as constants and small pure functions (no I/O).

Statements that change a run's status carry their own condition (`WHERE status NOT IN
terminal...`), and the schema adds a trigger that aborts any change to a terminal status, so the
rule holds even for SQL typed by hand.
"""

from __future__ import annotations

from typing import Final

from tether.checkpoint import query
from tether.checkpoint.store_records import thread_order
from tether.types import RunStatus, sources

APPLICATION_ID: Final = 0x54455448
"""`PRAGMA application_id` of a tether database ("TETH"): tells our files from other SQLite ones."""

TERMINAL: Final = query.TERMINAL
"""The terminal statuses as an SQL list (`tether.types.TERMINAL_STATUSES`)."""

ACTIVE: Final = query.ACTIVE
"""Statuses that need a live process to move on (an `interrupted` run waits for input)."""
STARTABLE: Final = query.sql_list(sources(RunStatus.RUNNING))
"""Where `mark_running` starts a run from (`tether.types.TRANSITIONS`)."""
CANCELLABLE: Final = query.sql_list(sources(RunStatus.CANCELLING))
"""Where `request_cancel` moves a run from (`tether.types.TRANSITIONS`)."""

# -- schema -------------------------------------------------------------------------------
# Migrations are append-only: a released step is never edited, only followed by a new one.

SCHEMA_V1: Final[tuple[str, ...]] = (
    # `seq` gives the creation order (`list_runs` is newest first) even when timestamps tie.
    # `owner` names the process driving the run (`owner.py`); `heartbeat_at` is the last time
    # it wrote for the run (creation, start, root checkpoints — each one until version 5, some
    # since: `POINT_RUN` — end).
    """CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        thread_id TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        checkpoint_id TEXT,
        error TEXT,
        cancel_latency_ms REAL,
        metadata TEXT NOT NULL DEFAULT '{}',
        owner TEXT,
        heartbeat_at TEXT
    )""",
    "CREATE INDEX runs_by_thread ON runs (thread_id, seq)",
    "CREATE INDEX runs_by_status ON runs (status, seq)",
    f"""CREATE TRIGGER runs_terminal_status_is_final
        BEFORE UPDATE OF status ON runs
        WHEN OLD.status IN {TERMINAL} AND NEW.status IS NOT OLD.status
        BEGIN
            SELECT RAISE(ABORT, 'tether: a terminal run status cannot be changed');
        END""",
    # No foreign key to `runs`: the audit log accepts events for any id, as the protocol does.
    """CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        phase TEXT NOT NULL,
        at TEXT NOT NULL,
        node TEXT,
        detail TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    # `refs` is a full map, or a delta on the parent `refs_base` (see `refs.py`). No index on
    # run_id: every commit pays for each b-tree it touches, and rollback is rare.
    """CREATE TABLE checkpoints (
        thread_id TEXT NOT NULL,
        ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        parent_id TEXT,
        step INTEGER NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next BLOB NOT NULL,
        metadata BLOB NOT NULL,
        run_id TEXT,
        refs BLOB NOT NULL,
        refs_base TEXT,
        refs_depth INTEGER NOT NULL,
        PRIMARY KEY (thread_id, ns, checkpoint_id)
    ) WITHOUT ROWID""",
    # A root checkpoint points its live run at itself: part of the same statement, so the
    # superstep's transaction makes no separate round trip for it. An ended run keeps its
    # final checkpoint. (Dropped by version 5: `POINT_RUN`, `LIVE_CHECKPOINT`.)
    f"""CREATE TRIGGER checkpoints_point_run
        AFTER INSERT ON checkpoints
        WHEN NEW.run_id IS NOT NULL AND NEW.ns = ''
        BEGIN
            UPDATE runs SET checkpoint_id = NEW.checkpoint_id, heartbeat_at = NEW.created_at
            WHERE run_id = NEW.run_id AND status NOT IN {TERMINAL};
        END""",
    # Keyed by checkpoint before channel so that the cascade from `checkpoints` and the
    # lookup of one (channel, checkpoint) reference both use the primary key.
    """CREATE TABLE blobs (
        thread_id TEXT NOT NULL,
        ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (thread_id, ns, checkpoint_id, channel),
        FOREIGN KEY (thread_id, ns, checkpoint_id)
            REFERENCES checkpoints (thread_id, ns, checkpoint_id) ON DELETE CASCADE
    ) WITHOUT ROWID""",
    # A rowid table: the rowid keeps insertion order, and an upsert keeps a row's rowid, so a
    # replaced control write stays where the task's first write was (as in memory).
    """CREATE TABLE writes (
        thread_id TEXT NOT NULL,
        ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        task_name TEXT NOT NULL,
        channel TEXT NOT NULL,
        value BLOB NOT NULL,
        UNIQUE (thread_id, ns, checkpoint_id, task_id, idx),
        FOREIGN KEY (thread_id, ns, checkpoint_id)
            REFERENCES checkpoints (thread_id, ns, checkpoint_id) ON DELETE CASCADE
    )""",
)

SCHEMA_V2: Final[tuple[str, ...]] = (
    # Threads created explicitly (the Agent Server's `POST /threads`), with their metadata.
    """CREATE TABLE threads (
        thread_id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}'
    ) WITHOUT ROWID""",
)

SCHEMA_V3: Final[tuple[str, ...]] = (
    # JSON {"node": ..., "traceback": ...} of a run that ended `error`; NULL otherwise.
    "ALTER TABLE runs ADD COLUMN failure TEXT",
)

FRAME_FUNCTION: Final = "tether_frame"
"""The SQL function (`serde.frame`, registered by `schema.migrate`) that puts a value stored
before checksums behind its frame."""
SCHEMA_V4: Final[tuple[str, ...]] = (
    f"UPDATE blobs SET value = {FRAME_FUNCTION}(value)",
    f"UPDATE writes SET value = {FRAME_FUNCTION}(value)",
    f"UPDATE checkpoints SET next = {FRAME_FUNCTION}(next), "
    f"metadata = {FRAME_FUNCTION}(metadata)",
)

SCHEMA_V5: Final[tuple[str, ...]] = (
    # Every root checkpoint of a run used to point the run at itself (`checkpoints_point_run`):
    # one more b-tree page, so one more page in the log, in every superstep's commit. A run is
    # now pointed at its checkpoints now and then (`POINT_RUN`), and a live run's latest
    # checkpoint is found from there (`LIVE_CHECKPOINT`). Can be applied again.
    "DROP TRIGGER IF EXISTS checkpoints_point_run",
)

SCHEMA_V6: Final[tuple[str, ...]] = (
    # A search of threads (`search_threads`: latest update first, ties by id, paged) walks this
    # index from its newest entry and stops at `offset + limit` matches, where it read and
    # sorted every thread. Measured with 50,000 threads, a page of 10 (medians): 14 ms ->
    # 0.04 ms unfiltered (42 -> 0.06 ms at offset 100), 20 -> 0.1 ms for a key one thread in
    # ten has. A filter that few threads match walks further, each entry's row read from the
    # table: 19 -> 6 ms for one in 1,000, and 18 -> 32 ms for one that none matches (every
    # entry walked: the worst case). Ascending, walked backwards: a thread made or updated
    # goes at its end, and the pages it leaves behind stay full (2.9 MB for those threads; a
    # descending one fed the same way took 5.2 MB, half of it empty). Can be applied again.
    "CREATE INDEX IF NOT EXISTS threads_by_update ON threads (updated_at, thread_id DESC)",
)

MIGRATIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("initial schema: runs, events, checkpoints, blobs, writes", SCHEMA_V1),
    ("thread records", SCHEMA_V2),
    ("where a failed run failed: its node and traceback", SCHEMA_V3),
    ("a checksum on every stored value", SCHEMA_V4),
    ("a live run's checkpoint found from its checkpoints, not pointed at by each", SCHEMA_V5),
    ("threads searched newest first by an index, not a scan and a sort", SCHEMA_V6),
)
"""(description, statements) per schema version; version N is `MIGRATIONS[N - 1]`."""

COUNT_OBJECTS: Final = "SELECT count(*) FROM sqlite_master"
GET_APPLICATION_ID: Final = "PRAGMA application_id"
GET_USER_VERSION: Final = "PRAGMA user_version"
SET_JOURNAL_WAL: Final = "PRAGMA journal_mode = WAL"
SET_FOREIGN_KEYS: Final = "PRAGMA foreign_keys = ON"
AUTOCHECKPOINT_OFF: Final = "PRAGMA wal_autocheckpoint = 0"
CHECKPOINT_PASSIVE: Final = "PRAGMA wal_checkpoint(PASSIVE)"
CHECKPOINT_TRUNCATE: Final = "PRAGMA wal_checkpoint(TRUNCATE)"
PAGE_SIZE: Final = "PRAGMA page_size"


def set_application_id(value: int) -> str:
    """`PRAGMA application_id = value` (pragmas take no parameters)."""
    return f"PRAGMA application_id = {int(value)}"


def set_user_version(value: int) -> str:
    """`PRAGMA user_version = value`."""
    return f"PRAGMA user_version = {int(value)}"


def set_busy_timeout(seconds: float) -> str:
    """`PRAGMA busy_timeout` in milliseconds."""
    return f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}"


def set_synchronous(level: str) -> str:
    """`PRAGMA synchronous = NORMAL|FULL`."""
    if level not in ("normal", "full"):
        raise ValueError(f"synchronous must be 'normal' or 'full', not {level!r}")
    return f"PRAGMA synchronous = {level.upper()}"


# -- transactions ---------------------------------------------------------------------------

BEGIN_WRITE: Final = "BEGIN IMMEDIATE"
"""Takes the write lock up front, so a transaction never fails half-way on a lock upgrade."""
BEGIN_READ: Final = "BEGIN"
COMMIT: Final = "COMMIT"
ROLLBACK: Final = "ROLLBACK"
QUERY_ONLY: Final = "PRAGMA query_only = ON"
"""The reading connection refuses writes: a write sent to it by mistake fails loudly."""
SAVEPOINT: Final = "SAVEPOINT tether_op"
ROLLBACK_TO_SAVEPOINT: Final = "ROLLBACK TO tether_op"
RELEASE_SAVEPOINT: Final = "RELEASE tether_op"

# -- runs -----------------------------------------------------------------------------------

LIVE_CHECKPOINT: Final = (
    "coalesce((SELECT c.checkpoint_id FROM checkpoints AS c "
    "WHERE c.thread_id = runs.thread_id AND c.ns = '' "
    "AND c.checkpoint_id >= runs.checkpoint_id AND c.run_id = runs.run_id "
    "ORDER BY c.checkpoint_id DESC LIMIT 1), runs.checkpoint_id)"
)
"""The latest root checkpoint of a run that has not ended, in an expression over its `runs` row.

An active run's `checkpoint_id` column is a lower bound (`POINT_RUN`, NULL while the run has no
root checkpoint): its latest is the newest of its own at or after that one (ids sort by time),
found by a walk of the thread's primary key from its newest checkpoint down, which stops at
the first of the run's (the newest of all, unless another writer shares the thread). The column
of a run that ended or waits for input is exact (`FINISH_RUN`, `MARK_ORPHANED` store this
expression's value), so that no walk goes past the checkpoints of the runs that came after it
on its thread."""

RUN_CHECKPOINT: Final = (
    f"CASE WHEN runs.status NOT IN {ACTIVE} OR runs.checkpoint_id IS NULL "
    f"THEN runs.checkpoint_id ELSE {LIVE_CHECKPOINT} END"
)
"""A run's latest root checkpoint, whatever its status (the `checkpoint_id` of its `RunInfo`)."""

RUN_FIELDS: Final = (
    "run_id, thread_id, status, reason, created_at, started_at, ended_at, checkpoint_id, "
    "error, cancel_latency_ms, metadata, failure"
)
"""The columns of `runs` that `RunInfo` is built from, in its field order (`failure`: node and
traceback)."""
RUN_COLUMNS: Final = RUN_FIELDS.replace("checkpoint_id", RUN_CHECKPOINT)
"""`RUN_FIELDS` as read: the run's `checkpoint_id` is its latest root checkpoint."""
RUN_LIVE_CHECKPOINT: Final = f"SELECT {LIVE_CHECKPOINT} FROM runs WHERE run_id = ?"
"""An active run's latest root checkpoint, after a statement that changed its row (which
returns `RUN_FIELDS`, whose `checkpoint_id` is then only the lower bound).

Not in the statement's `RETURNING` clause: SQLite plans a subquery there without the changed
row's values as index constraints, so `LIVE_CHECKPOINT` would read every checkpoint of the
file (measured: a cancel request took 1.8 ms beside 20,000 checkpoints of other threads, and
grew with them). In a `SELECT`, its walk starts at the thread's newest checkpoint."""

INSERT_RUN: Final = (
    f"INSERT INTO runs ({RUN_FIELDS}, owner, heartbeat_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
GET_RUN: Final = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"


def cancel_requests(count: int) -> str:
    """Runs among `count` ids that are being cancelled, with their reasons."""
    marks = ", ".join("?" * count)
    return (f"SELECT run_id, reason FROM runs WHERE run_id IN ({marks}) "
            "AND status = 'cancelling' AND reason IS NOT NULL")

CANCEL_REASON: Final = (
    "SELECT reason FROM runs WHERE run_id = ? AND status = 'cancelling' AND reason IS NOT NULL"
)
"""A run's durable cancel request, read in the transaction of its checkpoint (`notes_cancels`)."""
POINT_RUN: Final = (
    "UPDATE runs SET checkpoint_id = ?1, heartbeat_at = ?2 "
    f"WHERE run_id = ?3 AND status IN {ACTIVE} "
    "AND (checkpoint_id IS NULL OR checkpoint_id < ?1)"
)
"""Point an active run at its root checkpoint ?1, written at ?2: in the transaction of the run's
first one, and of every checkpoint whose refs are stored whole (`refs.MAX_DEPTH`), so that
`LIVE_CHECKPOINT` walks a few rows. Only forward: a checkpoint stored again changes nothing.
The row of a run that ended or waits for input keeps what its end stored (a run writes no
checkpoint then)."""

MARK_RUNNING: Final = (
    "UPDATE runs SET status = 'running', started_at = coalesce(started_at, ?), owner = ?, "
    "heartbeat_at = ? "
    f"WHERE run_id = ? AND status IN {STARTABLE} AND reason IS NULL "
    f"RETURNING {RUN_FIELDS}"
)
REQUEST_CANCEL: Final = (
    "UPDATE runs SET status = 'cancelling', reason = ? "
    f"WHERE run_id = ? AND status IN {CANCELLABLE} AND reason IS NULL "
    f"RETURNING {RUN_FIELDS}"
)
FINISH_RUN: Final = (
    "UPDATE runs SET status = ?, reason = coalesce(?, reason), error = ?, failure = ?, "
    f"checkpoint_id = coalesce(?, {LIVE_CHECKPOINT}), ended_at = ?, cancel_latency_ms = ?, "
    "heartbeat_at = ? "
    f"WHERE run_id = ? AND status NOT IN {TERMINAL} "
    f"RETURNING {RUN_FIELDS}"
)
ACTIVE_RUNS: Final = (
    f"SELECT owner, {RUN_COLUMNS} FROM runs WHERE status IN {ACTIVE} AND owner IS NOT NULL "
    "ORDER BY seq"
)
MARK_ORPHANED: Final = (
    f"UPDATE runs SET status = 'error', error = ?, ended_at = ?, checkpoint_id = {LIVE_CHECKPOINT} "
    f"WHERE run_id = ? AND owner = ? AND status IN {ACTIVE} "
    f"RETURNING {RUN_FIELDS}"
)
"""Conditional on the same dead owner, so two processes reconciling at once mark a run once."""


def list_runs(*, by_thread: bool, by_status: bool) -> str:
    """`SELECT` of runs newest first; parameters: [thread_id], [status], limit (-1: none)."""
    where = []
    if by_thread:
        where.append("thread_id = ?")
    if by_status:
        where.append("status = ?")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {RUN_COLUMNS} FROM runs{clause} ORDER BY seq DESC LIMIT ?"


# -- events ---------------------------------------------------------------------------------

INSERT_EVENT: Final = (
    "INSERT INTO events (run_id, seq, phase, at, node, detail) VALUES "
    "(?1, (SELECT coalesce(max(seq), 0) + 1 FROM events WHERE run_id = ?1), ?2, ?3, ?4, ?5)"
)
"""Appends after the run's last event; executed row by row, so a batch keeps its order."""
LIST_EVENTS: Final = "SELECT phase, at, node, detail FROM events WHERE run_id = ? ORDER BY seq"

# -- threads --------------------------------------------------------------------------------

THREAD_COLUMNS: Final = "thread_id, created_at, updated_at, metadata"
GET_THREAD: Final = f"SELECT {THREAD_COLUMNS} FROM threads WHERE thread_id = ?"
PUT_THREAD: Final = (
    f"INSERT INTO threads ({THREAD_COLUMNS}) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (thread_id) DO UPDATE SET updated_at = excluded.updated_at, "
    "metadata = excluded.metadata"
)
ALL_THREADS: Final = f"SELECT {THREAD_COLUMNS} FROM threads"


def _thread_filter(conditions: int, ids: bool) -> str:
    """The `WHERE` of a thread search: with `ids`, an id in a JSON array (the first
    parameter), then a metadata value at a path per condition (a path and a value each).

    A record SQLite cannot read as JSON (a `NaN` stored by an older tether) matches nothing,
    rather than failing the search of every thread."""
    test = "(CASE WHEN json_valid(metadata) THEN json_extract(metadata, ?) END) = ?"
    tests = ["thread_id IN (SELECT value FROM json_each(?))"] if ids else []
    return " AND ".join(tests + [test] * conditions) or "1"


def search_threads(conditions: int, ids: bool = False,
                   order: str = thread_order("updated_at", ascending=False)) -> str:
    """Threads that match (`_thread_filter`), ordered by `order` (`thread_order`: by default
    latest first, ties by id, as in the other stores, so that pages do not overlap), paged.
    The default order and its reverse are a walk of `threads_by_update` (`SCHEMA_V6`)."""
    return (f"SELECT {THREAD_COLUMNS} FROM threads WHERE {_thread_filter(conditions, ids)} "
            f"ORDER BY {order} LIMIT ? OFFSET ?")


def count_threads(conditions: int, ids: bool = False) -> str:
    """How many threads match (`_thread_filter`)."""
    return f"SELECT count(*) FROM threads WHERE {_thread_filter(conditions, ids)}"


FIRST_RUN_OF_THREAD: Final = (
    "SELECT created_at FROM runs WHERE thread_id = ? ORDER BY seq LIMIT 1"
)
THREAD_HAS_CHECKPOINTS: Final = "SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1"

# -- checkpoints ----------------------------------------------------------------------------

CHECKPOINT_COLUMNS: Final = (
    "thread_id, ns, checkpoint_id, parent_id, step, source, created_at, next, metadata, run_id, "
    "refs, refs_base"
)
"""What a `StoredCheckpoint` is built from (`refs_base` not None: refs need `REFS_CHAIN`)."""
INSERT_CHECKPOINT: Final = (
    "INSERT INTO checkpoints (thread_id, ns, checkpoint_id, parent_id, step, source, created_at, "
    "next, metadata, run_id, refs, refs_base, refs_depth) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
"""Idempotent: a checkpoint id names one immutable snapshot, so a repeat changes nothing."""
INSERT_BLOB: Final = (
    "INSERT INTO blobs (thread_id, ns, checkpoint_id, channel, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
GET_CHECKPOINT: Final = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints "
    "WHERE thread_id = ? AND ns = ? AND checkpoint_id = ?"
)
GET_LATEST_CHECKPOINT: Final = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = ? AND ns = ? "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
HAS_CHECKPOINT: Final = (
    "SELECT 1 FROM checkpoints WHERE thread_id = ? AND ns = ? AND checkpoint_id = ?"
)
REFS_CHAIN: Final = (
    "WITH RECURSIVE chain (checkpoint_id, refs, base, n) AS ("
    "SELECT checkpoint_id, refs, refs_base, 0 FROM checkpoints "
    "WHERE thread_id = ?1 AND ns = ?2 AND checkpoint_id = ?3 "
    "UNION ALL SELECT c.checkpoint_id, c.refs, c.refs_base, chain.n + 1 FROM chain "
    "JOIN checkpoints AS c ON c.thread_id = ?1 AND c.ns = ?2 AND c.checkpoint_id = chain.base "
    "WHERE chain.n < ?4"
    ") SELECT checkpoint_id, refs FROM chain ORDER BY n"
)
"""The stored refs from checkpoint ?3 back to the nearest full map, at most ?4 + 1 rows."""
RESOLVE_REFS: Final = (
    "SELECT b.channel, b.value FROM json_each(?3) AS r "
    "CROSS JOIN blobs AS b ON b.thread_id = ?1 AND b.ns = ?2 AND b.checkpoint_id = r.value "
    "AND b.channel = r.key"
)
"""The values refs (JSON: channel -> checkpoint id) point at, in one query. `CROSS JOIN`
fixes the loop order: one primary-key lookup per ref, never a scan of the thread."""


def list_checkpoints(*, before: bool) -> str:
    """`SELECT` of a thread's checkpoints newest first; parameters: thread, ns, [before], limit."""
    clause = " AND checkpoint_id < ?" if before else ""
    return (
        f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = ? AND ns = ?{clause} "
        "ORDER BY checkpoint_id DESC LIMIT ?"
    )


LIST_THREADS: Final = (
    "SELECT thread_id FROM ("
    "SELECT thread_id, checkpoint_id AS at FROM checkpoints "
    "UNION ALL SELECT thread_id, '' FROM runs WHERE thread_id IS NOT NULL"
    ") GROUP BY thread_id ORDER BY max(at) DESC, thread_id LIMIT ?"
)
"""Threads most recently checkpointed first (UUIDv7 ids sort by time); run-only ones last."""

# -- pending writes -------------------------------------------------------------------------

PUT_WRITE: Final = (
    "INSERT INTO writes (thread_id, ns, checkpoint_id, task_id, idx, task_name, channel, value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, ns, checkpoint_id, task_id, idx) DO UPDATE SET "
    "task_name = excluded.task_name, channel = excluded.channel, value = excluded.value "
    "WHERE excluded.idx < 0"
)
"""Insert-if-absent for a task's ordinary writes (idx >= 0: the first stored wins, so a retry
cannot change it); replace for control writes (idx < 0: interrupt, error, cancelled, resume),
which record the task's latest fate. One statement, so a batch keeps its order."""
LIST_WRITES: Final = (
    "SELECT task_id, task_name, idx, channel, value FROM writes "
    "WHERE thread_id = ? AND ns = ? AND checkpoint_id = ? ORDER BY rowid"
)
LIST_CHANNEL_WRITES: Final = (
    "SELECT task_id, task_name, idx, channel, value FROM writes "
    "WHERE thread_id = ? AND ns = ? AND checkpoint_id = ? AND channel = ? ORDER BY rowid"
)
"""One channel's writes of a checkpoint: a point read (the unique key's prefix)."""

# -- deleting -------------------------------------------------------------------------------

RUN_STATUS: Final = "SELECT status FROM runs WHERE run_id = ?"

DELETE_RUN: Final[tuple[str, ...]] = (
    "DELETE FROM events WHERE run_id = ?1",
    "DELETE FROM runs WHERE run_id = ?1",
)

DELETE_THREAD: Final[tuple[str, ...]] = (
    "DELETE FROM writes WHERE thread_id = ?1",
    "DELETE FROM blobs WHERE thread_id = ?1",
    "DELETE FROM checkpoints WHERE thread_id = ?1",
    "DELETE FROM events WHERE run_id IN (SELECT run_id FROM runs WHERE thread_id = ?1)",
    "DELETE FROM runs WHERE thread_id = ?1",
    "DELETE FROM threads WHERE thread_id = ?1",
)
COPY_THREAD: Final[tuple[str, ...]] = (
    "INSERT INTO checkpoints (thread_id, ns, checkpoint_id, parent_id, step, source, created_at, "
    "next, metadata, run_id, refs, refs_base, refs_depth) "
    "SELECT ?2, ns, checkpoint_id, parent_id, step, source, created_at, next, metadata, NULL, "
    "refs, refs_base, refs_depth FROM checkpoints WHERE thread_id = ?1",
    "INSERT INTO blobs (thread_id, ns, checkpoint_id, channel, value) "
    "SELECT ?2, ns, checkpoint_id, channel, value FROM blobs WHERE thread_id = ?1",
    "INSERT INTO writes (thread_id, ns, checkpoint_id, task_id, idx, task_name, channel, value) "
    "SELECT ?2, ns, checkpoint_id, task_id, idx, task_name, channel, value FROM writes "
    "WHERE thread_id = ?1 ORDER BY rowid",
)
"""A thread's checkpoints, blobs and writes (in their order) under another thread id: the same
rows, refs chains and all, but no run's (`run_id` NULL)."""
DELETE_RUN_CHECKPOINTS: Final = (
    "DELETE FROM checkpoints WHERE run_id = ?1 "
    "AND thread_id IN (SELECT thread_id FROM runs WHERE run_id = ?1)"
)
"""Searches only the run's thread. Blobs and writes go with their checkpoints (ON DELETE
CASCADE), and so do whole refs chains (a chain never spans two runs)."""
DELETE_UNKNOWN_RUN_CHECKPOINTS: Final = "DELETE FROM checkpoints WHERE run_id = ?"
"""For checkpoints whose run has no record: a scan of every thread."""
RUN_EXISTS: Final = "SELECT 1 FROM runs WHERE run_id = ?"
