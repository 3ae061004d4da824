"""What a running task asks of its graph run: `TaskHost` (implemented by the loop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tether.engine.spec import GraphSpec, Write
from tether.engine.task import StopMode, Task
from tether.runtime import Runtime


class TaskHost(Protocol):
    """What running a task asks of the loop it belongs to (implemented by `Loop`).

    Attributes:
        keeps_writes: the finished tasks of a multi-task step keep their writes at once
            (`task_done`), in case the step never completes.
    """

    keeps_writes: bool

    def preview(self, writes: Sequence[Write]) -> dict[str, Any]:
        """The state with only `writes` applied (what a conditional edge sees)."""

    def task_config(self, task: Task) -> dict[str, Any]:
        """The config dict `task`'s node sees."""

    def make_runtime(self) -> Runtime[Any]:
        """A `Runtime` for the nodes of this graph run (asked once, when a node first wants
        it)."""

    async def task_done(self, task: Task) -> None:
        """A task of a multi-task step finished (store its writes as pending writes).

        Cancellation:
            Storing the writes is one store transaction; cancelled before it commits,
            the task runs again on resume.
        """

    async def task_failed(self, task: Task, error: BaseException) -> None:
        """An attempt of `task` failed (the run's policies may stop the run).

        Cancellation:
            As `RunHost.stop` when the run is stopped for it.
        """

    def node_stopped(self, task: Task, how: StopMode) -> None:
        """A node stopped after the run's cancel (`terminate_node`)."""

    async def run_subgraph(self, task: Task, handler: Callable[[Any], Any]) -> Any:
        """Run a compiled-graph node's subgraph; its output is the task's result.

        Cancellation:
            Cancelling the run stops the subgraph's tasks with the same ladder, then
            `CancelledError` is raised.
        """

    async def run_graph(self, task: Task, spec: GraphSpec, graph_input: Any,
                        handler: Callable[[Any], Any], *, index: int | None = None) -> Any:
        """Run a graph `task`'s code invokes (the `index`-th), under it; its output.

        Cancellation:
            The graph's tasks are children of `task`'s scope: cancelling stops them, and
            their writes of an unfinished step are kept as for a subgraph node.
        """


__all__ = ["TaskHost"]
