"""`BaseCache`: LangGraph's cache interface. Entries live at (namespace, key), hold a serialized
value and expire after their ttl (seconds)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from tether.checkpoint.serde import Serializer

ValueT = TypeVar("ValueT")
Namespace = tuple[str, ...]
FullKey = tuple[Namespace, str]


class BaseCache(ABC, Generic[ValueT]):
    """A cache of values by (namespace, key), each with an optional time to live.

    Values are serialized (tether's MessagePack `Serializer`, never pickle), so a hit returns a
    fresh copy. The async methods call the sync ones inline (a local cache answers in
    microseconds); a networked cache overrides them.

    Args:
        serde: the serializer (default `Serializer()`).
        clock: seconds since the epoch (default `time.time`); tests pass a fake one.
    """

    def __init__(self, *, serde: Serializer | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.serde = serde or Serializer()
        self._clock = clock or time.time

    @abstractmethod
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """The live entries among `keys` (a missing or expired key is absent)."""

    @abstractmethod
    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store each value with its ttl in seconds (None: for ever), replacing what was there.

        Raises:
            SerializationError: a value cannot be serialized (nothing is stored).
        """

    @abstractmethod
    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete every entry of `namespaces` (None: the whole cache)."""

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """Async `get`.

        Cancellation:
            Inline, without an await point: it completes. A read, safe to retry.
        """
        return self.get(keys)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Async `set`.

        Cancellation:
            Inline, without an await point: it completes. Safe to retry.
        """
        self.set(pairs)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Async `clear`.

        Cancellation:
            Inline, without an await point: it completes. Safe to retry.
        """
        self.clear(namespaces)

    def _expiry(self, ttl: int | None) -> float | None:
        return None if ttl is None else self._clock() + ttl


__all__ = ["BaseCache", "FullKey", "Namespace", "ValueT"]
