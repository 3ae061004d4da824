"""`LastValue`: a plain state key; at most one write per superstep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import ValueChannel
from tether.errors import InvalidUpdateError


class LastValue(ValueChannel):
    """Keeps the last value written; two writes in one superstep are an error."""

    __slots__ = ()

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

    def fresh(self) -> LastValue:
        return LastValue(self.key)
