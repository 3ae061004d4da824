"""A run's trace for the LangChain callbacks it was given (`config["callbacks"]`: a tracer, a
token counter, LangSmith's or Langfuse's handler): the graph's run as a chain run, each
attempt of its nodes as a chain run under it, and the chat models and tools a node calls
under that node's run, with LangGraph's names, tags and metadata.

The runs layer tells the end of the run (`RunRequest.on_end`); the engine's observer hook tells
each attempt's start, answer, failure and end (`tether.engine.observe`). Nothing here is made
for a run given no callbacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManager
from langchain_core.callbacks.manager import CallbackManagerForChainRun

from tether.engine.observe import AttemptWatch, MessageOut, TaskObserver
from tether.errors import NodeCancelled


class RunTrace:
    """The chain run of one graph run, begun when the run is requested.

    Args:
        callbacks: the run's `config["callbacks"]` (a list of handlers or a manager).
        name: the graph's name (LangGraph's root run is named after it).
        graph_input: the run's input.
        run_id: the run's id (the root run's id, as LangGraph takes a config's `run_id`).
        tags, metadata: the run config's, inherited by every run under it.
    """

    def __init__(self, callbacks: Any, *, name: str, graph_input: Any, run_id: str,
                 tags: list[str] | None, metadata: dict[str, Any] | None) -> None:
        manager = CallbackManager.configure(inheritable_callbacks=callbacks,
                                            inheritable_tags=tags or None,
                                            inheritable_metadata=metadata or None)
        self.root: CallbackManagerForChainRun = manager.on_chain_start(
            None, graph_input, name=name, run_id=_uuid(run_id))

    def observer(self, inner: TaskObserver) -> TaskObserver:
        """The run's observer: each attempt a chain run under the graph's, its LangChain
        calls under it (through `inner`, which makes them the callbacks of the node's code)."""
        return _NodeRuns(self.root, inner)

    def end(self, run: Any) -> None:
        """The run has ended: its chain run ends with its result, or its error."""
        error = run.exception
        if error is None:
            self.root.on_chain_end(run.result)
        else:
            self.root.on_chain_error(error)


class _NodeRuns:
    """A `TaskObserver`: each attempt of a task is a chain run under the graph's."""

    __slots__ = ("inner", "root")

    def __init__(self, root: CallbackManagerForChainRun, inner: TaskObserver) -> None:
        self.root, self.inner = root, inner

    def watch(self, config: Callable[[], dict[str, Any]], node_input: Any,
              out: MessageOut | None) -> AttemptWatch:
        """Begin the attempt's chain run, and make its child callbacks the ones the node's
        code and LangChain calls see (with the inner observer's handler, if any)."""
        task_config = config()
        metadata = task_config.get("metadata") or {}
        step = metadata.get("langgraph_step")
        manager = self.root.get_child()
        manager.add_metadata(dict(metadata), inherit=False)  # the node's run's own
        if step is not None:
            manager.add_tags([f"graph:step:{step}"], inherit=False)
        node_run = manager.on_chain_start(None, node_input,
                                          name=metadata.get("langgraph_node", "node"),
                                          run_id=uuid.uuid4())
        task_config["callbacks"] = node_run.get_child()
        return _NodeRun(node_run, self.inner.watch(lambda: task_config, node_input, out))


class _NodeRun:
    """One attempt's chain run: ended by the node's answer, its error, or its stop."""

    __slots__ = ("ended", "inner", "run")

    def __init__(self, run: CallbackManagerForChainRun, inner: AttemptWatch) -> None:
        self.run, self.inner, self.ended = run, inner, False

    def finished(self, output: Any) -> None:
        """The node answered: its run ends with the answer."""
        self.inner.finished(output)
        self.ended = True
        self.run.on_chain_end(output)

    def failed(self, error: BaseException) -> None:
        """The node raised (or paused): its run ends with the error."""
        self.inner.failed(error)
        self.ended = True
        self.run.on_chain_error(error)

    def close(self) -> list[dict[str, Any]]:
        """The attempt is over; a run neither answered nor failed was stopped."""
        left = self.inner.close()
        if not self.ended:
            self.ended = True
            self.run.on_chain_error(NodeCancelled())
        return left


def _uuid(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(run_id)
    except ValueError:
        return uuid.uuid4()


__all__ = ["RunTrace"]
