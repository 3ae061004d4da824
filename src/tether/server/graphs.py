"""The graphs a server serves, one assistant each, all bound to the server's store (and, those
compiled without a long-term store, to the server's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.checkpoint.base import CheckpointStore
from tether.graph.compiled import CompiledStateGraph
from tether.server.wire import assistant_id_of
from tether.store.base import BaseStore
from tether.types import utcnow


@dataclass(frozen=True, slots=True)
class Assistant:
    """A served graph, as the Agent Server presents it (one assistant per graph)."""

    graph_id: str
    assistant_id: str
    graph: CompiledStateGraph
    created_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        """The Agent Server's `Assistant` object."""
        at = self.created_at.isoformat()
        return {"assistant_id": self.assistant_id, "graph_id": self.graph_id, "config": {},
                "context": {}, "created_at": at, "updated_at": at,
                "metadata": {"created_by": "system"}, "version": 1, "name": self.graph_id,
                "description": None}


def bind(graph: CompiledStateGraph, store: CheckpointStore, name: str,
         long_term_store: BaseStore | None = None) -> CompiledStateGraph:
    """`graph` running on `store` under `name` (the id it is served as, which its runs record):
    itself if it already does, else compiled again (`CompiledStateGraph.rebind`: it keeps its
    interrupts, config, long-term store and policies; a graph compiled without a long-term store
    gets `long_term_store`).

    Raises:
        TypeError: `graph` is not a compiled tether graph (a LangGraph one, say).
    """
    if not isinstance(graph, CompiledStateGraph):
        raise TypeError(
            f"the server serves compiled tether graphs (tether.graph.StateGraph(...).compile()), "
            f"not {type(graph).__module__}.{type(graph).__name__}"
        )
    return graph.rebind(store, name=name, default_store=long_term_store)


class Assistants:
    """The served graphs by graph id and by assistant id.

    Args:
        graphs: graph id → compiled graph (with or without a checkpointer).
        store: the store every graph runs on.
        long_term_store: the long-term store of the graphs compiled without one.

    Raises:
        ValueError: no graphs.
        TypeError: a value is not a compiled tether graph.
    """

    def __init__(self, graphs: Mapping[str, CompiledStateGraph], store: CheckpointStore,
                 long_term_store: BaseStore | None = None) -> None:
        if not graphs:
            raise ValueError("the server needs at least one graph to serve")
        self._by_graph: dict[str, Assistant] = {}
        self._by_id: dict[str, Assistant] = {}
        for graph_id, graph in graphs.items():
            assistant = Assistant(graph_id, assistant_id_of(graph_id),
                                  bind(graph, store, graph_id, long_term_store))
            self._by_graph[graph_id] = assistant
            self._by_id[assistant.assistant_id] = assistant

    def get(self, key: str) -> Assistant | None:
        """An assistant by its id or by its graph id (the API takes either)."""
        return self._by_id.get(key) or self._by_graph.get(key)

    def all(self) -> list[Assistant]:
        """Every assistant, in the order the graphs were given."""
        return list(self._by_graph.values())

    @property
    def first(self) -> Assistant:
        """The first assistant (any graph reaches the shared store's runs)."""
        return next(iter(self._by_graph.values()))


__all__ = ["Assistant", "Assistants", "bind"]
