"""Every exception tether raises, and the one place their meanings are defined.

```
Exception
├── TetherError                         everything tether reports as a failure
│   ├── GraphCompileError (ValueError)  bad wiring, found at `compile()`
│   ├── ConfigError (ValueError)        an unknown or malformed config key
│   ├── InvalidUpdateError              a node returned something that is not an update
│   │   └── InvalidRouteError (KeyError) a conditional edge answered an unknown route
│   ├── EmptyInputError                 a run with no input and nothing to continue
│   ├── GraphRecursionError             the superstep budget (`recursion_limit`) ran out
│   ├── NodeTimeoutError                one attempt of a node overran its `timeout`
│   ├── NodeError                       a node failed in a way tether detected (not picklable...)
│   ├── RunError                        misuse of the run API
│   │   ├── RunNotFound (LookupError)
│   │   ├── ThreadBusyError             `multitask_strategy="reject"` and the thread has a run
│   │   ├── OverloadError               the process runs as many runs as it may
│   │   ├── InvalidResumeError          resume of a run or thread that cannot be resumed
│   │   └── CheckpointerRequired        the call needs a checkpointer and the graph has none
│   └── StoreError                      the store cannot do what was asked
│       ├── CheckpointNotFound (LookupError)
│       ├── SchemaVersionError          a database written by a newer tether
│       ├── CorruptStoreError           a file that is not a tether database
│       ├── SerializationError          a state value that cannot be stored
│       ├── StatusTransitionError       a run status change the status machine forbids
│       │   └── TerminalStatusError     ... an attempt to overwrite a terminal run status
│       └── StaleLeaseError             a worker whose lease was taken over tried to write
├── GraphInterrupt                      control flow: a node paused for human input
└── ParentCommand                       control flow: a subgraph node updates its parent

BaseException
└── asyncio.CancelledError
    ├── NodeCancelled                   what `check_cancelled()` raises inside a node
    └── RunCancelled                    what the caller of a cancelled run sees
        ├── RunTimeout                  ... when the run's deadline passed
        └── RecursionLimitReached       ... when `recursion_limit` stopped it (also a
                                        GraphRecursionError, for LangGraph's callers)
```

Warning
└── UserWarning
    └── StrictnessWarning               what `compile(strict=True)` would refuse (a node
                                        returning a key the state lacks, a node no edge reaches)

The cancel family subclasses `asyncio.CancelledError` on purpose: code written for LangGraph
(`except asyncio.CancelledError`) keeps working, and a bare `except Exception` in a node cannot
swallow a cancel. Interrupts stay outside `TetherError` so that `except TetherError` in a node
never eats a pause.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.types import CancelReason, Interrupt


class TetherError(Exception):
    """Base of every failure tether reports."""


class GraphCompileError(TetherError, ValueError):
    """The graph is wired wrongly; the message names the node or edge."""


class StrictnessWarning(UserWarning):
    """Something LangGraph accepts and `compile(strict=True)` refuses: a node that returns a
    key the state lacks (the key is dropped, as LangGraph does) or a node nothing reaches.
    Warned once per node and key."""


class ConfigError(TetherError, ValueError):
    """A config key is unknown or its value is malformed."""


class InvalidUpdateError(TetherError):
    """A node returned a value that is not a valid state update, or two writes collided."""


class InvalidRouteError(InvalidUpdateError, KeyError):
    """A conditional edge answered something its `path_map` does not know (also a `KeyError`,
    as in LangGraph)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class EmptyInputError(TetherError):
    """A run was started with no input and there is no checkpoint to continue from."""


class GraphRecursionError(TetherError, RecursionError):
    """The run used up its superstep budget (`recursion_limit`) without finishing."""


class NodeTimeoutError(TetherError):
    """One attempt of a node ran longer than the node's `timeout`.

    Not a subclass of the built-in `TimeoutError` (an `OSError`), so the default retry policy
    treats it as retryable, as LangGraph's does.
    """

    def __init__(self, node: str, timeout: float, elapsed: float, kind: str = "run") -> None:
        if kind == "idle":
            message = (f"Node '{node}' exceeded its idle timeout of {timeout:.3f}s without "
                       f"making progress (elapsed: {elapsed:.3f}s).")
        else:
            message = (f"Node '{node}' exceeded its run timeout of {timeout:.3f}s "
                       f"(elapsed: {elapsed:.3f}s).")
        super().__init__(message)
        self.node = node
        self.timeout = timeout
        self.elapsed = elapsed
        self.kind = kind


class NodeError(TetherError):
    """A node could not run for a reason tether detected (for instance, unpicklable input)."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"Node '{node}': {message}")
        self.node = node


class RunError(TetherError):
    """The run API was used in a way that cannot work."""


class RunNotFound(RunError, LookupError):
    """No run with this id is known to the graph's store or this process."""

    def __init__(self, run_id: str, hint: str = "") -> None:
        super().__init__(f"No run with id {run_id!r}{': ' + hint if hint else ''}")
        self.run_id = run_id


class ThreadBusyError(RunError):
    """A new run was refused because its thread already has one in flight."""

    def __init__(self, thread_id: str, active_run_id: str) -> None:
        super().__init__(
            f"Thread {thread_id!r} already has run {active_run_id!r} in flight "
            "(multitask_strategy='reject'); wait for it, cancel it, or choose "
            "'enqueue', 'interrupt' or 'rollback'"
        )
        self.thread_id = thread_id
        self.active_run_id = active_run_id


class OverloadError(RunError):
    """The process is running as many runs as it may, and refuses new ones."""


class InvalidResumeError(RunError):
    """Resume was asked of a run or thread that has nothing to resume."""


class CheckpointerRequired(RunError):
    """The operation needs a checkpointer; compile the graph with one."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} needs a checkpointer: compile the graph with "
            "compile(checkpointer=SqliteSaver('runs.db')) or InMemorySaver()"
        )


class StoreError(TetherError):
    """The store could not do what was asked; nothing stored was changed."""


class CheckpointNotFound(StoreError, LookupError):
    """A thread or checkpoint id does not exist in the store."""


class SchemaVersionError(StoreError):
    """The database was written by a newer tether than this one."""


class CorruptStoreError(StoreError):
    """The file is not a readable tether database."""


class SerializationError(StoreError, TypeError):
    """A value cannot be stored; the message names the state key."""


class StatusTransitionError(StoreError):
    """A change of a run's status that `tether.types.TRANSITIONS` does not allow."""


class TerminalStatusError(StatusTransitionError):
    """Something tried to change the status of a run that has already ended."""


class StaleLeaseError(StoreError):
    """A worker whose lease was taken over tried to write for the run."""


class GraphInterrupt(Exception):
    """Raised by `interrupt()` to pause the run until a `Command(resume=...)` arrives.

    Control flow, not a failure: it is not a `TetherError`.
    """

    def __init__(self, interrupts: tuple[Interrupt, ...] = ()) -> None:
        super().__init__(interrupts)
        self.interrupts = interrupts


class ParentCommand(Exception):
    """Raised inside a subgraph to deliver a `Command(graph=Command.PARENT)` to its parent."""

    def __init__(self, command: Any) -> None:
        super().__init__(command)
        self.command = command


class NodeCancelled(asyncio.CancelledError):
    """Raised by `check_cancelled()` when the current task has been cancelled."""

    def __init__(self, reason: CancelReason | None = None) -> None:
        super().__init__(reason.message if reason is not None else "cancelled")
        self.reason = reason


class RunCancelled(asyncio.CancelledError):
    """What iterating, awaiting or invoking a cancelled run raises.

    Attributes:
        reason: why the run was cancelled.
        run_id: the run's id.
        checkpoint_id: the final checkpoint (None without a checkpointer); resume from it.
    """

    def __init__(
        self, reason: CancelReason, run_id: str, checkpoint_id: str | None = None
    ) -> None:
        super().__init__(f"run {run_id} {reason.kind}: {reason.message}")
        self.reason = reason
        self.run_id = run_id
        self.checkpoint_id = checkpoint_id


class RunTimeout(RunCancelled):
    """The run's deadline (`config["timeout"]`) passed before it finished."""


class RecursionLimitReached(RunCancelled, GraphRecursionError):
    """`recursion_limit` stopped the run; a `GraphRecursionError` and a `RunCancelled` at once.

    The run is stopped through the ordinary cancel path, so it has a final checkpoint and can be
    resumed with a larger limit.
    """


_INVALID_RESUME = "__tether_invalid_resume__"


def mark_invalid_resume(error: BaseException) -> None:
    """Mark `error` as raised because an answer did not match its `interrupt()`'s
    `response_schema` (`is_invalid_resume` then says so)."""
    setattr(error, _INVALID_RESUME, True)


def is_invalid_resume(error: BaseException | None) -> bool:
    """Whether `error` was raised because a resume value did not match the
    `response_schema` of the `interrupt()` it answered (a `pydantic.ValidationError`): the
    answer was not kept, and the question can be answered again."""
    return getattr(error, _INVALID_RESUME, False) is True


__all__ = [
    "CheckpointNotFound",
    "CheckpointerRequired",
    "ConfigError",
    "CorruptStoreError",
    "EmptyInputError",
    "GraphCompileError",
    "GraphInterrupt",
    "GraphRecursionError",
    "InvalidResumeError",
    "InvalidRouteError",
    "InvalidUpdateError",
    "NodeCancelled",
    "NodeError",
    "NodeTimeoutError",
    "OverloadError",
    "ParentCommand",
    "RecursionLimitReached",
    "RunCancelled",
    "RunError",
    "RunNotFound",
    "RunTimeout",
    "SchemaVersionError",
    "SerializationError",
    "StaleLeaseError",
    "StatusTransitionError",
    "StoreError",
    "StrictnessWarning",
    "TerminalStatusError",
    "TetherError",
    "ThreadBusyError",
    "is_invalid_resume",
    "mark_invalid_resume",
]
