"""`NamedBarrierValue`: the barrier behind `add_edge([a, b], c)`; fires when all have written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import MISSING, BaseChannel, EmptyChannelError
from tether.errors import InvalidUpdateError


class NamedBarrierValue(BaseChannel):
    """Collects the names of finished sources; available once every expected name arrived."""

    __slots__ = ("names", "seen")

    def __init__(self, names: frozenset[str], key: str = "") -> None:
        super().__init__(key)
        self.names = names
        self.seen: set[str] = set()

    def get(self) -> None:
        if self.seen != self.names:
            raise EmptyChannelError(self.key)

    def update(self, values: Sequence[Any]) -> bool:
        changed = False
        for name in values:
            if name not in self.names:
                raise InvalidUpdateError(f"At key '{self.key}': unexpected source {name!r}")
            if name not in self.seen:
                self.seen.add(name)
                changed = True
        return changed

    def consume(self) -> bool:
        if self.seen == self.names:
            self.seen = set()
            return True
        return False

    def checkpoint(self) -> Any:
        return sorted(self.seen) if self.seen else MISSING

    def restore(self, value: Any) -> None:
        self.seen = set() if value is MISSING else set(value)

    def is_available(self) -> bool:
        return self.seen == self.names

    def fresh(self) -> NamedBarrierValue:
        return NamedBarrierValue(self.names, self.key)
