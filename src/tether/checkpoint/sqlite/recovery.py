"""Runs whose process died: finding them, and ending them so that they can be resumed.

A run records its owner (`owner.current()`) when it is created and when it starts. A run left
`pending`, `running` or `cancelling` whose owner is certainly dead is an *orphan*: it ends as
`error` ("orphaned: ..."), with an `orphan` event, and keeps its last checkpoint, which is intact
because every checkpoint is committed whole.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.checkpoint import owner
from tether.checkpoint.sqlite import _sql, rows
from tether.checkpoint.sqlite.connection import Connection
from tether.types import RunEvent, RunInfo, utcnow

OwnerAlive = Callable[[str], bool]
"""Tells whether the process an owner string names is alive (default: `owner.is_alive`)."""


def find(db: Connection, owner_alive: OwnerAlive | None = None) -> list[tuple[str, RunInfo]]:
    """(owner, run) of every orphan, oldest run first. Each owner is checked once."""
    alive = owner_alive or owner.is_alive
    verdicts: dict[str, bool] = {}
    orphans = []
    for row in db.all(_sql.ACTIVE_RUNS):
        who = row[0]
        if who not in verdicts:
            verdicts[who] = alive(who)
        if not verdicts[who]:
            orphans.append((who, rows.run_info(row[1:])))
    return orphans


def reconcile(db: Connection, owner_alive: OwnerAlive | None = None) -> list[RunInfo]:
    """End every orphan as `error` with an `orphan` event; return them as ended.

    Each run is ended in its own transaction, on condition that it still has the same dead
    owner and is still active: processes reconciling the same file at once end it once, and a
    run that finished meanwhile is left alone.
    """
    ended = []
    for who, info in find(db, owner_alive):
        pid = owner.pid_of(who)
        now = utcnow()
        error = f"orphaned: the process running it died (pid {pid})"
        detail = {"owner": who, "pid": pid, "status": info.status.value,
                  "checkpoint_id": info.checkpoint_id}
        event = rows.event_rows(info.run_id, [RunEvent("orphan", now, None, detail)])
        with db.write() as conn:
            row = conn.execute(_sql.MARK_ORPHANED,
                               (error, now.isoformat(), info.run_id, who)).fetchone()
            if row is None:
                continue
            conn.executemany(_sql.INSERT_EVENT, event)
        ended.append(rows.run_info(row))
    return ended


__all__ = ["OwnerAlive", "find", "reconcile"]
