"""`BaseStore`: LangGraph's long-term store interface. A backend implements `batch` and
`abatch`; every other method builds one op and hands it to them, so sync and async calls share
one implementation per backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

from tether.store.base.items import Item, SearchItem
from tether.store.base.ops import (
    NOT_PROVIDED,
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    NamespacePath,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchOp,
    validate_labels,
    validate_namespace,
)
from tether.store.base.settings import TTLConfig

Index = Literal[False] | list[str] | None


class BaseStore(ABC):
    """A key-value store for values that outlive a thread, organised in namespaces.

    Items live at (namespace, key); a namespace is a tuple of labels such as
    `("users", "u1", "memories")`. `search` finds items under a namespace prefix, filtered by
    their values and, on a store configured with an `index`, ranked by semantic similarity.

    Every call is one `batch` (or `abatch`) of ops: reads see the store as it was before the
    batch's writes, and the writes of a batch apply together (the last op for a key wins).
    """

    supports_ttl: bool = False
    """Whether `put(..., ttl=...)` is honoured; a store without TTLs refuses one."""
    batch_checks_namespaces: bool = False
    """Whether `batch` checks the namespaces of the ops it is given (tether's stores do, for
    ops built by callers): the methods then leave the check to it, so a call checks once."""
    ttl_config: TTLConfig | None = None

    @abstractmethod
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute `ops` together; one result per op, in order."""

    @abstractmethod
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute `ops` together; one result per op, in order.

        Cancellation:
            Backend-specific; tether's stores commit a batch whole or not at all.
        """

    # -- sync ---------------------------------------------------------------------------------

    def get(self, namespace: tuple[str, ...], key: str, *,
            refresh_ttl: bool | None = None) -> Item | None:
        """The item at (namespace, key), or None.

        Args:
            refresh_ttl: restart the item's time to live (default: the store's
                `ttl_config["refresh_on_read"]`, else True).

        Raises:
            InvalidNamespaceError: a label is empty, not a string, or contains a period.
        """
        return self._lone_get(self._get_op(namespace, key, refresh_ttl))

    def search(self, namespace_prefix: tuple[str, ...], /, *, query: str | None = None,
               filter: dict[str, Any] | None = None, limit: int = 10, offset: int = 0,
               refresh_ttl: bool | None = None) -> list[SearchItem]:
        """Items under `namespace_prefix` that match `filter`, best first for a `query` (on a
        store with an index), else oldest first.

        Args:
            filter: `{"field": value}` for equality, or `{"field": {"$gte": 3}}` with
                `$eq $ne $gt $gte $lt $lte`; every entry must hold.
            refresh_ttl: restart the time to live of the items returned.

        Raises:
            InvalidNamespaceError: a label of the prefix is invalid.
            ValueError: a negative limit or offset, or an unknown filter operator.
        """
        op = self._search_op(namespace_prefix, query, filter=filter, limit=limit, offset=offset,
                             refresh_ttl=refresh_ttl)
        return cast("list[SearchItem]", self.batch([op])[0])

    def put(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
            index: Index = None, *, ttl: float | NotProvided | None = NOT_PROVIDED) -> None:
        """Store `value` at (namespace, key), replacing what was there (its `created_at` is
        kept).

        Args:
            index: which paths of `value` to embed for semantic search: None for the store's
                `index["fields"]`, False for none, or a list of paths.
            ttl: minutes the item lives after its last write (or read, when reads refresh);
                None for ever; left out, the store's `ttl_config["default_ttl"]`.

        Raises:
            InvalidNamespaceError: the namespace is empty, rooted at "langgraph", or has an
                invalid label.
            TypeError: `value` is not a mapping.
            NotImplementedError: a `ttl` on a store that does not support TTLs.
        """
        self.batch([self._put_op(namespace, key, value, index, ttl)])

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Delete the item at (namespace, key), if any."""
        self.batch([self._delete_op(namespace, key)])

    def list_namespaces(self, *, prefix: NamespacePath | None = None,
                        suffix: NamespacePath | None = None, max_depth: int | None = None,
                        limit: int = 100, offset: int = 0) -> list[tuple[str, ...]]:
        """The namespaces that hold items, sorted; `"*"` in `prefix`/`suffix` matches any one
        label, and `max_depth` cuts each to its first labels (duplicates merged)."""
        op = self._list_op(prefix, suffix, max_depth, limit, offset)
        return cast("list[tuple[str, ...]]", self.batch([op])[0])

    # -- async --------------------------------------------------------------------------------

    async def aget(self, namespace: tuple[str, ...], key: str, *,
                   refresh_ttl: bool | None = None) -> Item | None:
        """Async `get`.

        Cancellation:
            As `abatch`: a read, safe to retry.
        """
        return await self._alone_get(self._get_op(namespace, key, refresh_ttl))

    async def asearch(self, namespace_prefix: tuple[str, ...], /, *, query: str | None = None,
                      filter: dict[str, Any] | None = None, limit: int = 10, offset: int = 0,
                      refresh_ttl: bool | None = None) -> list[SearchItem]:
        """Async `search`.

        Cancellation:
            As `abatch`: a read, safe to retry (a query's embedding is abandoned).
        """
        op = self._search_op(namespace_prefix, query, filter=filter, limit=limit, offset=offset,
                             refresh_ttl=refresh_ttl)
        return cast("list[SearchItem]", (await self.abatch([op]))[0])

    async def aput(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
                   index: Index = None, *,
                   ttl: float | NotProvided | None = NOT_PROVIDED) -> None:
        """Async `put`.

        Cancellation:
            Cancelled while embedding, nothing is stored; the write itself is one transaction,
            committed whole or not at all. Safe to retry (a put is idempotent).
        """
        await self.abatch([self._put_op(namespace, key, value, index, ttl)])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        """Async `delete`.

        Cancellation:
            Committed whole or not at all; safe to retry.
        """
        await self.abatch([self._delete_op(namespace, key)])

    async def alist_namespaces(self, *, prefix: NamespacePath | None = None,
                               suffix: NamespacePath | None = None,
                               max_depth: int | None = None, limit: int = 100,
                               offset: int = 0) -> list[tuple[str, ...]]:
        """Async `list_namespaces`.

        Cancellation:
            A read; safe to retry.
        """
        op = self._list_op(prefix, suffix, max_depth, limit, offset)
        return cast("list[tuple[str, ...]]", (await self.abatch([op]))[0])

    # -- the ops the methods build ------------------------------------------------------------

    def _lone_get(self, op: GetOp) -> Item | None:
        """`get`'s read: `batch([op])[0]`, which a backend may answer more directly (a lone
        get is a store's commonest call), with the same result and the same checks."""
        return cast("Item | None", self.batch([op])[0])

    async def _alone_get(self, op: GetOp) -> Item | None:
        """`aget`'s read, as `_lone_get`.

        Cancellation:
            As `abatch`.
        """
        return cast("Item | None", (await self.abatch([op]))[0])

    def _refresh(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return refresh_ttl
        return (self.ttl_config or {}).get("refresh_on_read", True)

    def _get_op(self, namespace: tuple[str, ...], key: str, refresh_ttl: bool | None) -> GetOp:
        if not self.batch_checks_namespaces:
            validate_labels(namespace)
        return GetOp(namespace, str(key), self._refresh(refresh_ttl))

    def _search_op(self, prefix: tuple[str, ...], query: str | None, *,
                   filter: dict[str, Any] | None, limit: int, offset: int,
                   refresh_ttl: bool | None) -> SearchOp:
        if not self.batch_checks_namespaces:
            validate_labels(prefix)
        return SearchOp(prefix, filter, limit, offset, query, self._refresh(refresh_ttl))

    def _put_op(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
                index: Index, ttl: float | NotProvided | None) -> PutOp:
        if not self.batch_checks_namespaces:
            validate_namespace(namespace)
        if ttl not in (NOT_PROVIDED, None) and not self.supports_ttl:
            raise NotImplementedError(
                f"{type(self).__name__} does not support TTLs: put(..., ttl=None) or use a "
                "store that does")
        if isinstance(ttl, NotProvided):
            ttl = (self.ttl_config or {}).get("default_ttl")
        return PutOp(namespace, str(key), value, index=index, ttl=ttl)

    def _delete_op(self, namespace: tuple[str, ...], key: str) -> PutOp:
        if not self.batch_checks_namespaces:
            validate_labels(namespace)
        return PutOp(namespace, str(key), None, ttl=None)

    def _list_op(self, prefix: NamespacePath | None, suffix: NamespacePath | None,
                 max_depth: int | None, limit: int, offset: int) -> ListNamespacesOp:
        conditions: list[MatchCondition] = []
        for match_type, path in (("prefix", prefix), ("suffix", suffix)):
            if path:
                if not self.batch_checks_namespaces:
                    validate_labels(path)
                conditions.append(MatchCondition(match_type, path))  # type: ignore[arg-type]
        return ListNamespacesOp(tuple(conditions), max_depth, limit, offset)


__all__ = ["BaseStore"]
