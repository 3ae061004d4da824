"""Assistants: one per served graph (`/assistants/search`, `/assistants/{id}`, its graph)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tether.server.context import Caller, Server
from tether.server.errors import invalid, not_found
from tether.server.graphs import Assistant
from tether.server.models import AssistantSearch

router = APIRouter()


def _assistant(server: Server, assistant_id: str) -> Assistant:
    found = server.assistants.get(assistant_id)
    if found is None:
        raise not_found("assistant", assistant_id)
    return found


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, server: Server,
                            _caller: Caller) -> list[dict[str, Any]]:
    """Assistants matching the graph id, name (substring) and metadata.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    found = []
    for assistant in server.assistants.all():
        data = assistant.to_json()
        if body.graph_id is not None and assistant.graph_id != body.graph_id:
            continue
        if body.name is not None and body.name.lower() not in assistant.graph_id.lower():
            continue
        if body.metadata and any(data["metadata"].get(k) != v for k, v in body.metadata.items()):
            continue
        found.append(data)
    if body.sort_order == "desc":
        found.reverse()
    return found[body.offset:body.offset + body.limit]


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, server: Server, _caller: Caller) -> dict[str, Any]:
    """An assistant by id or graph id.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return _assistant(server, assistant_id).to_json()


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
