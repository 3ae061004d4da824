"""`EphemeralValue`: a value that lives for one superstep (the trigger an edge writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import MISSING, ValueChannel
from tether.errors import InvalidUpdateError


class EphemeralValue(ValueChannel):
    """Holds what was written in the last superstep; a step that writes nothing clears it."""

    __slots__ = ("guard",)

    def __init__(self, key: str = "", *, guard: bool = False) -> None:
        super().__init__(key)
        self.guard = guard

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

    def fresh(self) -> EphemeralValue:
        return EphemeralValue(self.key, guard=self.guard)
