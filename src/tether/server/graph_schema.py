"""The Agent Server's `GraphSchema` of a served graph: its input, output, state, config and
context JSON Schemas, each None when it cannot be made (as the Agent Server answers)."""

from __future__ import annotations

import copy
import logging
import weakref
from collections.abc import Callable
from typing import Any

import anyio

from tether.graph import json_schema
from tether.graph.compiled import CompiledStateGraph

_log = logging.getLogger(__name__)
# Made once per graph (a compiled graph does not change), off the event loop: pydantic takes
# milliseconds for a schema of LangChain's messages. Copies are handed out.
_made: weakref.WeakKeyDictionary[CompiledStateGraph, dict[str, Any]] = (
    weakref.WeakKeyDictionary())


async def graph_schema(graph: CompiledStateGraph) -> dict[str, Any]:
    """`{"input_schema", "output_schema", "state_schema", "config_schema",
    "context_schema"}` of `graph` (the route adds the `graph_id`).

    Cancellation:
        Only the waiting stops: the worker thread making the schemas finishes its work, which
        changes nothing (the next call makes them again). Safe to retry.
    """
    found = _made.get(graph)
    if found is None:
        found = await anyio.to_thread.run_sync(_schemas, graph, abandon_on_cancel=True)
        _made[graph] = found
    return copy.deepcopy(found)


def _schemas(graph: CompiledStateGraph) -> dict[str, Any]:
    builder = graph.builder
    parts: dict[str, Callable[[], Any]] = {
        "input_schema": graph.get_input_jsonschema,
        "output_schema": graph.get_output_jsonschema,
        "state_schema": lambda: json_schema.of_state(builder,
                                                     json_schema.titled(graph.name, "State")),
        "config_schema": lambda: json_schema.of_config(builder),
        "context_schema": graph.get_context_jsonschema,
    }
    return {name: _made_or_none(graph.name, name, make) for name, make in parts.items()}


def _made_or_none(graph: str, name: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - a schema that cannot be made is None, as there
        _log.warning("cannot make the %s of graph %r: %s: %s", name, graph,
                     type(exc).__name__, exc)
        return None


__all__ = ["graph_schema"]
