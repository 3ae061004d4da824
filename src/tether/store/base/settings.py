"""How a store is configured: `IndexConfig` (semantic search) and `TTLConfig` (expiry)."""

from __future__ import annotations

from typing import Any, TypedDict


class TTLConfig(TypedDict, total=False):
    """Time to live for a store's items.

    Attributes:
        refresh_on_read: reads (`get`, `search`) restart the ttl of the items they return,
            unless a call says otherwise (default True).
        default_ttl: minutes a new item lives when `put` gives no `ttl` (default: for ever).
        sweep_interval_minutes: how often `start_ttl_sweeper()` deletes expired items
            (default 5).
        omit_expired: accepted for LangGraph's sake; tether's stores never return an expired
            item, swept or not.
    """

    refresh_on_read: bool
    default_ttl: float | None
    sweep_interval_minutes: int | None
    omit_expired: bool


class IndexConfig(TypedDict, total=False):
    """Semantic search: how a store turns items into vectors.

    Attributes:
        dims: the length of every vector (checked).
        embed: a LangChain `Embeddings`, or a function (sync or async) from a list of texts to
            a list of vectors.
        fields: paths into each value whose text is embedded (`"$"`, the default, is the
            whole value as JSON); `"a.b"`, `"list[0]"`, `"list[*].text"`, `"{a,b}"`. An item
            with several texts gets a vector for each and scores as its best one.
    """

    dims: int
    embed: Any
    fields: list[str] | None


__all__ = ["IndexConfig", "TTLConfig"]
