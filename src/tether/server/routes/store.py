"""The long-term store over HTTP: the Agent Server's `/store` routes (what `client.store` of
`langgraph-sdk` calls), on the server's store — the one its graphs compiled without a store of
their own get as `runtime.store`.

With API keys, a tenant reaches only the namespaces whose first label is its tenant name (the
rule LangGraph's docs write as an auth handler), and graphs keep a tenant's memories there by
reading the tenant from their run's `metadata["tether_tenant"]`. Without auth, every namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from tether.errors import SerializationError
from tether.server.auth import Principal
from tether.server.context import Caller, Server
from tether.server.models import StoreDelete, StoreNamespaces, StorePut, StoreSearch
from tether.server.wire import jsonable
from tether.store.base import Item, SearchItem

router = APIRouter()


def _owned(caller: Principal, namespace: Sequence[str]) -> tuple[str, ...]:
    """`namespace`, if the caller may reach it.

    Raises:
        HTTPException: 403 when it does not start with the caller's tenant.
    """
    if caller.tenant is not None and (not namespace or namespace[0] != caller.tenant):
        raise HTTPException(403, f"namespace {list(namespace)} is not yours: with API keys a "
                                 f"namespace starts with your tenant, {caller.tenant!r}")
    return tuple(namespace)


def _prefix(caller: Principal, prefix: Sequence[str] | None) -> tuple[str, ...]:
    """A search or listing prefix, narrowed to the caller's tenant (an empty one becomes it)."""
    if caller.tenant is not None and not prefix:
        return (caller.tenant,)
    return _owned(caller, prefix or ())


def _invalid(exc: Exception) -> HTTPException:
    return HTTPException(422, str(exc))


def item_json(item: Item | SearchItem) -> dict[str, Any]:
    """An item in the Agent Server's shape (`score` for search results)."""
    data: dict[str, Any] = {"namespace": list(item.namespace), "key": item.key,
                            "value": jsonable(item.value),
                            "created_at": item.created_at.isoformat(),
                            "updated_at": item.updated_at.isoformat()}
    if isinstance(item, SearchItem):
        data["score"] = item.score
    return data


@router.put("/store/items", status_code=204)
async def put_item(body: StorePut, server: Server, caller: Caller) -> Response:
    """Write an item (over any item at that namespace and key).

    Cancellation:
        One store transaction, whole or not at all; safe to retry.
    """
    namespace = _owned(caller, body.namespace)
    try:
        await server.long_term_store.aput(namespace, body.key, body.value,
                                          index=body.index, ttl=body.ttl)
    except (ValueError, SerializationError, NotImplementedError) as exc:
        raise _invalid(exc) from None
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(server: Server, caller: Caller, key: str,
                   namespace: str = "", refresh_ttl: bool | None = None,
                   ) -> dict[str, Any] | None:
    """The item at `namespace` (labels joined by `.`) and `key`, or null.

    Cancellation:
        Read-only (a TTL refresh is one short write); safe to retry.
    """
    labels = _owned(caller, namespace.split(".") if namespace else [])
    try:
        item = await server.long_term_store.aget(labels, key, refresh_ttl=refresh_ttl)
    except ValueError as exc:
        raise _invalid(exc) from None
    return item_json(item) if item is not None else None


@router.delete("/store/items", status_code=204)
async def delete_item(body: StoreDelete, server: Server, caller: Caller) -> Response:
    """Delete an item (nothing happens if there is none).

    Cancellation:
        One store transaction; safe to retry.
    """
    try:
        await server.long_term_store.adelete(_owned(caller, body.namespace), body.key)
    except ValueError as exc:
        raise _invalid(exc) from None
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(body: StoreSearch, server: Server,
                       caller: Caller) -> dict[str, list[dict[str, Any]]]:
    """Items under a namespace prefix, filtered, ranked by `query` on a store with an index.

    Cancellation:
        Read-only; safe to retry.
    """
    prefix = _prefix(caller, body.namespace_prefix)
    try:
        found = await server.long_term_store.asearch(
            prefix, query=body.query, filter=body.filter, limit=body.limit,
            offset=body.offset, refresh_ttl=body.refresh_ttl)
    except ValueError as exc:
        raise _invalid(exc) from None
    return {"items": [item_json(item) for item in found]}


@router.post("/store/namespaces")
async def list_namespaces(body: StoreNamespaces, server: Server,
                          caller: Caller) -> dict[str, list[list[str]]]:
    """The namespaces that hold items, matching `prefix` / `suffix`, cut at `max_depth`.

    Cancellation:
        Read-only; safe to retry.
    """
    prefix = _prefix(caller, body.prefix)
    try:
        found = await server.long_term_store.alist_namespaces(
            prefix=prefix or None, suffix=tuple(body.suffix) if body.suffix else None,
            max_depth=body.max_depth, limit=body.limit, offset=body.offset)
    except ValueError as exc:
        raise _invalid(exc) from None
    return {"namespaces": [list(ns) for ns in found]}


__all__ = ["item_json", "router"]
