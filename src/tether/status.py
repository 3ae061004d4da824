"""The run status machine, declared once: the statuses of a run and `TRANSITIONS`, every change
of status a store may make and the store call that makes it (re-exported by `tether.types`)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Literal


class RunStatus(StrEnum):
    """Where a run is in its life. Terminal states are final; `interrupted` is not terminal.

    The status machine is `TRANSITIONS`: every change of a run's status is one of its edges,
    made by the store call the edge names, and a store refuses every other change.
    """

    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    INTERRUPTED = "interrupted"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def terminal(self) -> bool:
        """True for states nothing may overwrite."""
        return self in TERMINAL_STATUSES

    @property
    def at_rest(self) -> bool:
        """True when nothing happens to the run until someone acts: it has ended, or it waits
        for input (what a wait for a run's end waits for, as the Agent Server's `join`)."""
        return self in TERMINAL_STATUSES or self is RunStatus.INTERRUPTED

    def can_become(self, status: RunStatus, by: Move) -> bool:
        """Whether the store call `by` may change a run from this status to `status`."""
        return TRANSITIONS[self].get(status) == by


TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.TIMEOUT}
)

Move = Literal["mark_running", "request_cancel", "finish_run"]
"""The store calls that change a run's status."""

_ENDS = (RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.TIMEOUT)

TRANSITIONS: Mapping[RunStatus, Mapping[RunStatus, Move]] = MappingProxyType({
    RunStatus.PENDING: {
        RunStatus.RUNNING: "mark_running",
        RunStatus.CANCELLING: "request_cancel",
        RunStatus.INTERRUPTED: "finish_run",
        **dict.fromkeys(_ENDS, "finish_run"),
    },
    RunStatus.RUNNING: {
        RunStatus.CANCELLING: "request_cancel",
        RunStatus.INTERRUPTED: "finish_run",
        **dict.fromkeys(_ENDS, "finish_run"),
    },
    RunStatus.CANCELLING: dict.fromkeys(
        (RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.ERROR), "finish_run"),
    RunStatus.INTERRUPTED: {
        RunStatus.RUNNING: "mark_running",
        RunStatus.CANCELLING: "request_cancel",
    },
    **{end: {} for end in _ENDS},
})
"""The run status machine: `TRANSITIONS[a][b]` is the store call that may move a run from `a`
to `b`; a pair not listed is refused, by every store.

```text
                   request_cancel
        +-------------------------------------------------------+
        |                                                       v
     pending ---mark_running---> running ---request_cancel---> cancelling
        |                        ^    |                         |
        |           mark_running |    | finish_run              | finish_run
        |                        |    v                         v
        |                     interrupted            cancelled | timeout | error
        |                        |
        |                        +---request_cancel---> cancelling
        |
        +---finish_run---> interrupted | success | error | cancelled | timeout

     running ---finish_run---> success | error | cancelled | timeout

     success, error, cancelled, timeout: terminal, nothing leaves them
```

A cancel that is durable wins: once a run is `cancelling` it can only end `cancelled`,
`timeout` (a cancel of kind timeout) or `error` (its process died); a run waiting for input
(`interrupted`) only starts again or is cancelled. A worker that claims again a run it was
driving keeps it `running`: that is not a change of status.
"""


def sources(status: RunStatus) -> tuple[RunStatus, ...]:
    """The statuses a run can move to `status` from, in declaration order."""
    return tuple(s for s in RunStatus if status in TRANSITIONS[s])


__all__ = ["TERMINAL_STATUSES", "TRANSITIONS", "Move", "RunStatus", "sources"]
