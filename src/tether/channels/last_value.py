"""`LastValue`: a plain state key; at most one write per superstep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import MISSING, BaseChannel, EmptyChannelError
from tether.errors import InvalidUpdateError


class LastValue(BaseChannel):
    """Keeps the last value written; two writes in one superstep are an error."""

    __slots__ = ("value",)

    def __init__(self, key: str = "") -> None:
        super().__init__(key)
        self.value: Any = MISSING

    def get(self) -> Any:
        if self.value is MISSING:
            raise EmptyChannelError(self.key)
        return self.value

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        if len(values) != 1:
            raise InvalidUpdateError(
                f"At key '{self.key}': Can receive only one value per step. "
                "Use an Annotated key to handle multiple values."
            )
        self.value = values[0]
        return True

    def checkpoint(self) -> Any:
        return self.value

    def restore(self, value: Any) -> None:
        self.value = value

    def is_available(self) -> bool:
        return self.value is not MISSING

    def fresh(self) -> LastValue:
        return LastValue(self.key)
