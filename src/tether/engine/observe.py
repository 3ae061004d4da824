"""The engine's hook on the code a task runs: an observer, given by the layer that builds the
run, watches each attempt of a top-level task from its start to its end.

tether's graph layer fills it with LangChain's callbacks (`tether.graph.chat_stream`): chat
models called inside a node stream their tokens as `messages` chunks, and a model stopped
mid-answer leaves its text behind. The engine knows nothing of LangChain: it hands the observer
the task's config and input, a thread-safe way out for chunks, and asks at the end what the
attempt left unfinished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

MessageOut = Callable[[Any], None]
"""Sends one `messages` chunk payload of the watched task (safe from worker threads)."""


class AttemptWatch(Protocol):
    """One attempt of a task, watched from its start (`TaskObserver.watch`) to `close`."""

    def finished(self, output: Any) -> None:
        """The node returned `output` (before its writes are computed)."""

    def failed(self, error: BaseException) -> None:
        """The node raised `error` (an `interrupt()`'s pause included)."""

    def close(self) -> list[dict[str, Any]]:
        """Stop watching (in the context the watch began in); what the attempt left
        unfinished: one `{"text", "id", "name"}` per model answer cut short, in order."""


class TaskObserver(Protocol):
    """Watches the attempts of a run's tasks (None on `LoopOptions`: nothing is watched, and
    an attempt costs nothing more)."""

    def watch(self, config: Callable[[], dict[str, Any]], node_input: Any,
              out: MessageOut | None) -> AttemptWatch:
        """Begin watching an attempt about to run, in its context (what is set there, the
        node's code sees).

        Args:
            config: the config the task's node sees (with LangGraph's metadata), built on
                first call; the observer may add to it (the node then sees that).
            node_input: the node's input.
            out: where the attempt's `messages` chunks go (None: its graph's chunks are not
                streamed, a subgraph's in a run that does not stream subgraphs).
        """


__all__ = ["AttemptWatch", "MessageOut", "TaskObserver"]
