"""`EphemeralValue`: a value that lives for one superstep (the trigger an edge writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import MISSING, BaseChannel, EmptyChannelError
from tether.errors import InvalidUpdateError


class EphemeralValue(BaseChannel):
    """Holds what was written in the last superstep; a step that writes nothing clears it."""

    __slots__ = ("guard", "value")

    def __init__(self, key: str = "", *, guard: bool = False) -> None:
        super().__init__(key)
        self.guard = guard
        self.value: Any = MISSING

    def get(self) -> Any:
        if self.value is MISSING:
            raise EmptyChannelError(self.key)
        return self.value

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            if self.value is MISSING:
                return False
            self.value = MISSING
            return True
        if self.guard and len(values) != 1:
            raise InvalidUpdateError(f"At key '{self.key}': Can receive only one value per step.")
        self.value = values[-1]
        return True

    def checkpoint(self) -> Any:
        return self.value

    def restore(self, value: Any) -> None:
        self.value = value

    def is_available(self) -> bool:
        return self.value is not MISSING

    def fresh(self) -> EphemeralValue:
        return EphemeralValue(self.key, guard=self.guard)
