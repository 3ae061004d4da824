"""`Topic`: a pub/sub channel collecting every value written in a superstep (used for `Send`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import MISSING, BaseChannel, EmptyChannelError


class Topic(BaseChannel):
    """Collects the values written in a step; with `accumulate`, keeps them across steps."""

    __slots__ = ("accumulate", "values")

    def __init__(self, key: str = "", *, accumulate: bool = False) -> None:
        super().__init__(key)
        self.accumulate = accumulate
        self.values: list[Any] = []

    def get(self) -> list[Any]:
        if not self.values:
            raise EmptyChannelError(self.key)
        return list(self.values)

    def update(self, values: Sequence[Any]) -> bool:
        if self.accumulate:
            if not values:
                return False
            self.values.extend(values)
            return True
        had = bool(self.values)
        self.values = list(values)
        return had or bool(values)

    def consume(self) -> bool:
        if self.accumulate or not self.values:
            return False
        self.values = []
        return True

    def checkpoint(self) -> Any:
        return list(self.values) if self.values else MISSING

    def restore(self, value: Any) -> None:
        self.values = [] if value is MISSING else list(value)

    def is_available(self) -> bool:
        return bool(self.values)

    def fresh(self) -> Topic:
        return Topic(self.key, accumulate=self.accumulate)
