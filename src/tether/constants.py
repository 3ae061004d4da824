"""Reserved names shared by every layer: graph endpoints and engine channel prefixes."""

from __future__ import annotations

from typing import Final

START: Final = "__start__"
"""The virtual node a graph's input comes from."""

END: Final = "__end__"
"""The virtual node that ends a branch of the graph."""

INTERRUPT: Final = "__interrupt__"
"""Key under which paused runs report their pending `Interrupt`s."""

RESUME: Final = "__resume__"
"""Pending-write key holding the resume values already given to a task."""
WITHDRAWN: Final = "__withdrawn__"
"""In place of a `__resume__` answer that `interrupt(response_schema=...)` refused: the
question is open again, and the next answer takes its place."""

ERROR: Final = "__error__"
"""Pending-write key recording a task that failed."""

CANCELLED: Final = "__cancelled__"
"""Pending-write key recording a task that was cancelled while it ran."""

RETURN: Final = "__return__"
"""Pending-write key holding the result of a finished call (a `@task`, a tool call)."""

PARTIAL: Final = "__partial__"
"""Pending-write channel of the text a model node had streamed when its run was stopped: a dict
`{"text", "id", "name"}` in the run's final checkpoint (kept when the thread gets a new input)."""

PREVIOUS: Final = "__previous__"
"""Channel of a functional graph holding what its last run saved (`previous`)."""

NO_WRITES: Final = "__no_writes__"
"""Pending-write key recording a task that finished without writing anything."""

TASKS: Final = "__pregel_tasks"
"""Channel that carries `Send` packets to the next superstep (LangGraph's name)."""

BRANCH_PREFIX: Final = "branch:to:"
"""Prefix of the trigger channel a node waits on when an edge points at it."""

JOIN_PREFIX: Final = "join:"
"""Prefix of the barrier channel behind `add_edge([a, b], c)`."""

RESERVED_NAMES: Final = frozenset(
    {START, END, INTERRUPT, RESUME, ERROR, CANCELLED, NO_WRITES, TASKS, RETURN, PREVIOUS,
     PARTIAL, WITHDRAWN}
)
"""Names no node or state key may take."""

RESERVED_CHARS: Final = (":", "|")
"""Characters that separate namespaces and therefore cannot appear in node names."""

CONTROL_WRITES: Final = frozenset({INTERRUPT, RESUME, ERROR, CANCELLED, PARTIAL, WITHDRAWN})
"""Pending-write keys that record what happened to a task rather than what it produced (a
partial answer too: the model task it belongs to did not finish, and runs again on resume)."""

DEFAULT_RECURSION_LIMIT: Final = 10007
"""Supersteps a fresh run may take, counting the input step (LangGraph 1.2's default)."""

NULL_TASK_ID: Final = "00000000-0000-0000-0000-000000000000"
"""Task id of writes made from outside any task (a `Command` given as input)."""

DEFAULT_CANCEL_GRACE: Final = 2.0
"""Seconds a node has to stop after a cancel before the next rung of the ladder."""

DEFAULT_CLEANUP_GRACE: Final = 5.0
"""Seconds all of a run's cleanup hooks get together."""
