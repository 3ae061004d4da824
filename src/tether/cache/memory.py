"""`InMemoryCache`: node caching in a dict, for one process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tether.cache.base import BaseCache, FullKey, Namespace, ValueT
from tether.checkpoint.serde import Serializer


class InMemoryCache(BaseCache[ValueT]):
    """LangGraph's `InMemoryCache`: entries in a dict, serialized, lost with the process.

    Expired entries are dropped when a `get` meets them.
    """

    def __init__(self, *, serde: Serializer | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(serde=serde, clock=clock)
        self._lock = threading.Lock()
        self._entries: dict[Namespace, dict[str, tuple[bytes, float | None]]] = {}

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        now, found = self._clock(), {}
        with self._lock:
            for namespace, key in keys:
                ns = tuple(namespace)
                entries = self._entries.get(ns)
                entry = entries.get(key) if entries is not None else None
                if entry is None:
                    continue
                data, expires_at = entry
                if expires_at is not None and expires_at <= now:
                    del entries[key]  # type: ignore[union-attr]
                    continue
                found[(ns, key)] = data
        return {full: self.serde.loads(data) for full, data in found.items()}

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        encoded: list[tuple[Namespace, str, bytes, float | None]] = [
            (tuple(ns), key, self.serde.dumps(value, f"cache entry {key!r}"), self._expiry(ttl))
            for (ns, key), (value, ttl) in pairs.items()]
        with self._lock:
            for ns, key, data, expires_at in encoded:
                self._entries.setdefault(ns, {})[key] = (data, expires_at)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        with self._lock:
            if namespaces is None:
                self._entries.clear()
            for ns in namespaces or ():
                self._entries.pop(tuple(ns), None)

    def __repr__(self) -> str:
        count: Any = sum(map(len, self._entries.values()))
        return f"InMemoryCache({count} entries)"


__all__ = ["InMemoryCache"]
