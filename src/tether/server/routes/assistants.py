"""Assistants: one per served graph (`/assistants/search`, `/count`, `/assistants/{id}`, its
graph, schemas and subgraphs, its one version). They are made from the graphs the server
serves, so the routes that would create, change or delete one are refused (405) with that
reason."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from tether.server.context import Caller, Server
from tether.server.errors import Refusal, invalid, not_found
from tether.server.graph_schema import graph_schema
from tether.server.graphs import Assistant
from tether.server.models import (
    AssistantCount,
    AssistantLatest,
    AssistantSearch,
    AssistantVersions,
)

router = APIRouter()

_FIXED: dict[int | str, dict[str, Any]] = {405: {"model": Refusal,
                "description": "tether serves one assistant per graph: it cannot be changed."}}
_TRUE, _FALSE = ("true", "True", "1"), ("false", "False", "0")


def _assistant(server: Server, assistant_id: str) -> Assistant:
    found = server.assistants.get(assistant_id)
    if found is None:
        raise not_found("assistant", assistant_id)
    return found


def _fixed(what: str, allow: str = "") -> HTTPException:
    """405 for a route that would change the assistants: why, and what to do instead."""
    return HTTPException(405, (
        f"tether serves one assistant per graph, made from the graphs the server was started "
        f"with: {what}. Serve another graph for another assistant, and give per-run settings "
        f"in a run's config or context."), headers={"Allow": allow})


def _matching(server: Server, graph_id: str | None, name: str | None,
              metadata: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The assistants with this graph id, name (a substring, any case) and metadata."""
    found = []
    for assistant in server.assistants.all():
        data = assistant.to_json()
        if graph_id is not None and assistant.graph_id != graph_id:
            continue
        if name is not None and name.lower() not in assistant.graph_id.lower():
            continue
        if metadata and any(data["metadata"].get(k) != v for k, v in metadata.items()):
            continue
        found.append(data)
    return found


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, server: Server,
                            _caller: Caller) -> list[dict[str, Any]]:
    """Assistants matching the graph id, name (substring) and metadata.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    found = _matching(server, body.graph_id, body.name, body.metadata)
    if body.sort_order == "desc":
        found.reverse()
    return found[body.offset:body.offset + body.limit]


@router.post("/assistants/count")
async def count_assistants(body: AssistantCount, server: Server, _caller: Caller) -> int:
    """How many assistants `/assistants/search` finds with the same filters (all pages).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return len(_matching(server, body.graph_id, body.name, body.metadata))


@router.post("/assistants", responses=_FIXED)
async def create_assistant(_caller: Caller) -> None:
    """Refused: an assistant cannot be created (one per served graph).

    Cancellation:
        Changes nothing.
    """
    raise _fixed("an assistant cannot be created")


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, server: Server, _caller: Caller) -> dict[str, Any]:
    """An assistant by id or graph id.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return _assistant(server, assistant_id).to_json()


@router.patch("/assistants/{assistant_id}", responses=_FIXED)
async def update_assistant(assistant_id: str, server: Server, _caller: Caller) -> None:
    """Refused for an assistant that exists (404 for another): it cannot be changed.

    Cancellation:
        Changes nothing.
    """
    _assistant(server, assistant_id)
    raise _fixed("an assistant cannot be changed", "GET")


@router.delete("/assistants/{assistant_id}", responses=_FIXED)
async def delete_assistant(assistant_id: str, server: Server, _caller: Caller) -> None:
    """Refused for an assistant that exists (404 for another): it cannot be deleted.

    Cancellation:
        Changes nothing.
    """
    _assistant(server, assistant_id)
    raise _fixed("an assistant cannot be deleted", "GET")


@router.post("/assistants/{assistant_id}/versions")
async def assistant_versions(assistant_id: str, body: AssistantVersions, server: Server,
                             _caller: Caller) -> list[dict[str, Any]]:
    """The assistant's versions: its one, version 1 (none if `metadata` does not match it, or
    past the page).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    found = [_assistant(server, assistant_id).to_json()]
    if body.metadata:
        found = [a for a in found if all(a["metadata"].get(k) == v
                                         for k, v in body.metadata.items())]
    return found[body.offset:body.offset + body.limit]


@router.post("/assistants/{assistant_id}/latest")
async def set_latest_assistant_version(assistant_id: str, body: AssistantLatest,
                                       server: Server, _caller: Caller) -> dict[str, Any]:
    """Make `version` the assistant's latest: version 1, its only one, already is (the
    assistant is answered); another is a 404.

    Cancellation:
        Changes nothing: safe to retry.
    """
    assistant = _assistant(server, assistant_id)
    if body.version != 1:
        raise HTTPException(404, f"assistant {assistant_id!r} has no version {body.version}: "
                                 "tether serves one assistant per graph, always version 1")
    return assistant.to_json()


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(assistant_id: str, server: Server, _caller: Caller,
                              xray: str | None = None) -> dict[str, Any]:
    """The assistant's graph: nodes and edges.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    if xray not in (None, "true", "false", "True", "False") and not (xray or "").isdigit():
        raise invalid("xray must be true, false or a depth", "query", "xray")
    drawing = _assistant(server, assistant_id).graph.get_graph(xray=xray in ("true", "True"))
    result: dict[str, Any] = drawing.to_json()
    return result


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, server: Server,
                                _caller: Caller) -> dict[str, Any]:
    """The JSON Schemas of the assistant's graph (the Agent Server's `GraphSchema`): input,
    output, state, config and context, None for one that cannot be made.

    Cancellation:
        Read-only: nothing changes, safe to retry (the schemas are made once per graph, in a
        worker thread, and kept).
    """
    assistant = _assistant(server, assistant_id)
    return {"graph_id": assistant.graph_id, **await graph_schema(assistant.graph)}


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_assistant_subgraphs(assistant_id: str, server: Server, _caller: Caller,
                                  recurse: str | None = None) -> dict[str, Any]:
    """The schemas of the graph's subgraphs by namespace (`parent|child` with `recurse`).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return await _subgraphs(_assistant(server, assistant_id), None, recurse)


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraph(assistant_id: str, namespace: str, server: Server,
                                 _caller: Caller, recurse: str | None = None) -> dict[str, Any]:
    """The schemas of the subgraph at `namespace` (`{}` if there is none there; a nested one,
    `parent|child`, is found with `recurse`).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return await _subgraphs(_assistant(server, assistant_id), namespace, recurse)


async def _subgraphs(assistant: Assistant, namespace: str | None,
                     recurse: str | None) -> dict[str, Any]:
    if recurse not in (None, *_TRUE, *_FALSE):
        raise invalid("recurse must be true or false", "query", "recurse")
    deep = recurse in _TRUE
    found = list(assistant.graph.get_subgraphs(namespace=namespace, recurse=deep))
    return {name: await graph_schema(graph) for name, graph in found}
