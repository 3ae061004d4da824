"""A call: what it runs (`CallSpec`), and what it leaves on its parent for a resume (its
result, or the questions it asked), keyed by its deterministic id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.checkpoint.base import WriteRecord
from tether.constants import INTERRUPT, RESUME, RETURN, WITHDRAWN
from tether.engine.spec import NodeSpec
from tether.engine.task import Task
from tether.errors import is_invalid_resume
from tether.types import RetryPolicy

CALL_ASKED = -6
"""The `idx` of a call's own interrupt record: who asked, so that an answer reaches it (the
parent task's record, idx -1, lists the same interrupts for display)."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """What a call runs.

    Attributes:
        node: the call as a node: its name, the function (taking `(args, kwargs)`), whether it
            is async, the engine objects it takes, its retry policies and timeouts.
        cache: its `CachePolicy`, or None.
        cache_ns: the namespace its cached results are filed under (the function's path).
        quiet: it is not streamed as a unit of its own (no `updates` chunk, no `tasks` or
            `debug` events): a tool call of a `ToolNode`, which its node's update shows, as in
            LangGraph.
    """

    node: NodeSpec
    cache: Any = None
    cache_ns: str = "__dynamic__"
    quiet: bool = False

    @property
    def name(self) -> str:
        """The call's name (in streams and ids)."""
        return self.node.name


def call_spec(name: str, func: Callable[..., Any], *, is_async: bool,
              kwargs: frozenset[str] = frozenset(), retry: Sequence[RetryPolicy] = (),
              timeout: float | None = None, idle_timeout: float | None = None,
              cache: Any = None, cache_ns: str = "__dynamic__", quiet: bool = False) -> CallSpec:
    """Describe a function to be launched as calls.

    Args:
        kwargs: the engine objects (`config`, `runtime`, `writer`, `store`) it takes by keyword.
    """
    def run(given: tuple[tuple[Any, ...], dict[str, Any]], **engine: Any) -> Any:
        args, keywords = given
        return func(*args, **keywords, **engine)

    async def arun(given: tuple[tuple[Any, ...], dict[str, Any]], **engine: Any) -> Any:
        args, keywords = given
        return await func(*args, **keywords, **engine)

    node = NodeSpec(name=name, func=arun if is_async else run, is_async=is_async,
                    kwargs=kwargs, retry=tuple(retry), timeout=timeout,
                    idle_timeout=idle_timeout, isolation="thread")
    return CallSpec(node, cache, cache_ns, quiet)


def call_writes(task: Task) -> list[WriteRecord]:
    """What the calls of an unfinished task leave for a resume: the results of the finished
    ones and the questions the paused ones asked (recursively)."""
    out: list[WriteRecord] = []
    for call in task.calls or ():
        if call.outcome == "done" and not call.cached and call.writes:
            out.append(WriteRecord(call.id, call.name, 0, RETURN, call.writes[0][1]))
        elif call.outcome == "interrupted":
            out.append(WriteRecord(call.id, call.name, CALL_ASKED, INTERRUPT,
                                   list(call.interrupts)))
            start = len(call.resume) - len(call.claimed)
            out.extend(WriteRecord(call.id, call.name, -10 - (start + i), RESUME, answer)
                       for i, answer in enumerate(call.claimed))
        elif call.outcome == "error" and call.answered is not None \
                and is_invalid_resume(call.error):
            # An answer its `interrupt()` refused: withdrawn, to be asked again (as a task's).
            out.append(WriteRecord(call.id, call.name, -10 - call.answered, WITHDRAWN, None))
        out.extend(call_writes(call))
    return out


__all__ = ["CALL_ASKED", "CallSpec", "call_spec", "call_writes"]
