"""Runs whose process died: finding them, and ending them so that they can be resumed.

A run records its owner (`owner.current()`) when it is created and when it starts. A run left
`pending`, `running` or `cancelling` whose owner is certainly dead is an *orphan*: it ends as
`error` ("orphaned: ..."), with an `orphan` event, and keeps its last checkpoint, which is intact
because every checkpoint is committed whole.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.checkpoint import owner
from tether.checkpoint.sqlite import _sql, rows, runs
from tether.checkpoint.sqlite.connection import Connection
from tether.types import RunInfo, utcnow

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
        done = db.run(runs.mark_orphaned(info, who, owner.pid_of(who), utcnow()))
        if done is not None:
            ended.append(done)
    return ended


__all__ = ["OwnerAlive", "find", "reconcile"]
