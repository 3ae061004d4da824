"""What a store returns: `Item` (a stored value and its place) and `SearchItem` (plus a score)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.store.clock import as_datetime

Moment = datetime | str | int
"""A timestamp as an item is given it: a datetime, an ISO string (items rebuilt from
`Item.dict()`), or whole microseconds since the epoch (what tether's stores keep)."""


def _moment(value: Moment) -> datetime | int:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _datetime(value: datetime | int) -> datetime:
    return as_datetime(value) if type(value) is int else value  # type: ignore[return-value]


class Item:
    """A stored value with its namespace, key and timestamps.

    A timestamp given as microseconds is turned into its datetime on first access: a store
    hands out many items whose timestamps are never looked at, and making the two datetimes
    is about as costly as reading the item.

    Args:
        value: the stored mapping (its keys are what search filters look at).
        key: the item's id within its namespace.
        namespace: the path of labels the item lives under, e.g. `("users", "u1")`.
        created_at: when the item was first stored (kept by later puts).
        updated_at: when it was last stored.
    """

    __slots__ = ("_created_at", "_updated_at", "key", "namespace", "value")

    def __init__(self, *, value: dict[str, Any], key: str, namespace: tuple[str, ...],
                 created_at: Moment, updated_at: Moment) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        self._created_at = _moment(created_at)
        self._updated_at = _moment(updated_at)

    @property
    def created_at(self) -> datetime:
        """When the item was first stored (an aware UTC datetime from tether's stores)."""
        moment = self._created_at = _datetime(self._created_at)
        return moment

    @created_at.setter
    def created_at(self, value: Moment) -> None:
        self._created_at = _moment(value)

    @property
    def updated_at(self) -> datetime:
        """When the item was last stored."""
        moment = self._updated_at = _datetime(self._updated_at)
        return moment

    @updated_at.setter
    def updated_at(self, value: Moment) -> None:
        self._updated_at = _moment(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Item):
            return NotImplemented
        return (self.value == other.value and self.key == other.key
                and self.namespace == other.namespace and self.created_at == other.created_at
                and self.updated_at == other.updated_at)

    def __hash__(self) -> int:
        return hash((self.namespace, self.key))

    def dict(self) -> dict[str, Any]:
        """The item as JSON-ready data (timestamps in ISO format)."""
        return {"namespace": list(self.namespace), "key": self.key, "value": self.value,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.dict().items())
        return f"{type(self).__name__}({fields})"


class SearchItem(Item):
    """An item found by `search`; `score` is its cosine similarity to the query (None when
    the search had no query, or the item has no vectors)."""

    __slots__ = ("score",)

    def __init__(self, namespace: tuple[str, ...], key: str, value: dict[str, Any],  # noqa: PLR0917 - LangGraph's positional signature
                 created_at: Moment, updated_at: Moment, score: float | None = None) -> None:
        super().__init__(value=value, key=key, namespace=namespace, created_at=created_at,
                         updated_at=updated_at)
        self.score = score

    def dict(self) -> dict[str, Any]:
        """As `Item.dict`, with the score."""
        return {**super().dict(), "score": self.score}


__all__ = ["Item", "Moment", "SearchItem"]
