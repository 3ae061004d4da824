"""What a compiled graph answers of LangChain's Runnable interface besides running: its name,
its drawing, its JSON Schemas (made by pydantic, imported when one is asked for), its
subgraphs and the clearing of its node cache. A mixin of `CompiledStateGraph`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from tether.cache.base import BaseCache
from tether.engine.caching import CACHE_NS_WRITES
from tether.engine.spec import GraphSpec
from tether.graph import json_schema
from tether.graph.nodes import NodeDef, subgraphs_of


class RunnableParts:
    """The name, drawing, schemas, subgraphs and node cache of a compiled graph."""

    name: str
    builder: Any
    nodes: Mapping[str, NodeDef]
    spec: GraphSpec
    cache: BaseCache[Any] | None

    def get_graph(self, config: dict[str, Any] | None = None, *,
                  xray: int | bool = False) -> Any:
        """The graph's nodes and edges (with `draw_mermaid()`)."""
        from tether.graph.drawing import draw

        del config
        return draw(self.builder, xray=bool(xray))

    async def aget_graph(self, config: dict[str, Any] | None = None, *,
                         xray: int | bool = False) -> Any:
        """`get_graph`, awaited (nothing is: the drawing is made from the builder).

        Cancellation:
            Nothing to undo.
        """
        return self.get_graph(config, xray=xray)

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        """The graph's name (or `name`), with `suffix` after it as LangChain joins them:
        `Graph` + `Input` → `GraphInput`, `graph` + `input` → `graph_input`."""
        found = name or self.name
        return json_schema.titled(found, suffix) if suffix else found

    @property
    def context_schema(self) -> Any:
        """The type of a run's `context` (`StateGraph(..., context_schema=...)`), or None."""
        return self.builder.context_schema

    # -- schemas and subgraphs (LangGraph's; the schemas need pydantic) -------------------

    def get_input_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON Schema of the input (`input_schema`, else the state schema)."""
        del config
        return json_schema.of_schema(self.builder, self.builder.input_schema,
                                     json_schema.titled(self.name, "Input"))

    def get_output_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON Schema of the output (`output_schema`, else the state schema)."""
        del config
        return json_schema.of_schema(self.builder, self.builder.output_schema,
                                     json_schema.titled(self.name, "Output"))

    def get_context_jsonschema(self) -> dict[str, Any] | None:
        """The JSON Schema of the context schema; None without one."""
        return json_schema.of_context(self.builder)

    def get_subgraphs(self, *, namespace: str | None = None,
                      recurse: bool = False) -> Iterator[tuple[str, Any]]:
        """`(namespace, subgraph)` of the nodes that run one: only the one at `namespace`
        (`parent|child`; a nested one needs `recurse`) if given; deeper ones with `recurse`."""
        return subgraphs_of(self.nodes, namespace, recurse)

    async def aget_subgraphs(self, *, namespace: str | None = None, recurse: bool = False
                             ) -> AsyncIterator[tuple[str, Any]]:
        """`get_subgraphs`, as an async iterator (nothing is awaited).

        Cancellation:
            Reads the builder only: nothing to undo, safe to retry.
        """
        for found in subgraphs_of(self.nodes, namespace, recurse):
            yield found

    # -- the node cache -------------------------------------------------------------------

    def clear_cache(self, nodes: Sequence[str] | None = None) -> None:
        """Forget the cached results of `nodes` (every node's, by default) in the graph's
        cache (`compile(cache=...)`); names of no node are passed over.

        Raises:
            ValueError: the graph has no cache.
        """
        self._cache().clear(self._cache_namespaces(nodes))

    async def aclear_cache(self, nodes: Sequence[str] | None = None) -> None:
        """Async `clear_cache`.

        Cancellation:
            As the cache's `aclear`: safe to retry.
        """
        await self._cache().aclear(self._cache_namespaces(nodes))

    def _cache(self) -> BaseCache[Any]:
        if self.cache is None:
            raise ValueError("this graph has no cache (compile(cache=...)): there is no "
                             "cache to clear")
        return self.cache

    def _cache_namespaces(self, nodes: Sequence[str] | None) -> list[tuple[str, ...]]:
        """The cache namespaces of the nodes' results (as `engine.caching` files them)."""
        specs = self.spec.nodes
        return [(CACHE_NS_WRITES, *specs[name].cache_ns)
                for name in (nodes or list(specs)) if name in specs]


__all__ = ["RunnableParts"]
