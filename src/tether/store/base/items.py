"""What a store returns: `Item` (a stored value and its place) and `SearchItem` (plus a score)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _as_datetime(value: datetime | str) -> datetime:
    # Items rebuilt from JSON (`Item.dict()`) carry ISO strings.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class Item:
    """A stored value with its namespace, key and timestamps.

    Args:
        value: the stored mapping (its keys are what search filters look at).
        key: the item's id within its namespace.
        namespace: the path of labels the item lives under, e.g. `("users", "u1")`.
        created_at: when the item was first stored (kept by later puts).
        updated_at: when it was last stored.
    """

    __slots__ = ("created_at", "key", "namespace", "updated_at", "value")

    def __init__(self, *, value: dict[str, Any], key: str, namespace: tuple[str, ...],
                 created_at: datetime | str, updated_at: datetime | str) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        self.created_at = _as_datetime(created_at)
        self.updated_at = _as_datetime(updated_at)

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
                 created_at: datetime | str, updated_at: datetime | str,
                 score: float | None = None) -> None:
        super().__init__(value=value, key=key, namespace=namespace, created_at=created_at,
                         updated_at=updated_at)
        self.score = score

    def dict(self) -> dict[str, Any]:
        """As `Item.dict`, with the score."""
        return {**super().dict(), "score": self.score}


__all__ = ["Item", "SearchItem"]
