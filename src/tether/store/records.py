"""An item as every backend reads it back (`Stored`), and how it becomes an `Item`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.store.base.items import Item, SearchItem


@dataclass(slots=True)
class Stored:
    """One stored item.

    Attributes:
        created_at, updated_at, expires_at: microseconds since the epoch (`clock.py`).
        ttl: minutes the item lives after a write or refresh, or None.
        seq: the store's creation order: a new item gets a higher number than every item
            before it; a put over an existing item keeps its number.
    """

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: int
    updated_at: int
    expires_at: int | None
    ttl: float | None
    seq: int

    def item(self) -> Item:
        """The `Item` a `get` returns."""
        return Item(value=self.value, key=self.key, namespace=self.namespace,
                    created_at=self.created_at, updated_at=self.updated_at)

    def search_item(self, score: float | None = None) -> SearchItem:
        """The `SearchItem` a `search` returns."""
        return SearchItem(self.namespace, self.key, self.value, self.created_at,
                          self.updated_at, score)



def joined(namespace: tuple[str, ...]) -> str:
    """A namespace as the SQL stores keep it: labels joined by `.` (labels never contain one)."""
    return ".".join(namespace)


def split(text: str) -> tuple[str, ...]:
    """A namespace kept by `joined`."""
    return tuple(text.split(".")) if text else ()


__all__ = ["Stored", "joined", "split"]
