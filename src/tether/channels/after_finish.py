"""The triggers of a deferred node (`add_node(..., defer=True)`): an edge's write is kept, but
fires only once the run has nothing else to do (`finish()`), and once (`consume()`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.channels.base import MISSING, BaseChannel, EmptyChannelError
from tether.channels.named_barrier_value import NamedBarrierValue


class LastValueAfterFinish(BaseChannel):
    """The edge trigger of a deferred node: written like an edge, available after `finish()`.

    Invariant: `finished` is True only while a value is held; a new write takes the value back
    (the node waits again until the run is about to end).
    """

    __slots__ = ("finished", "value")

    def __init__(self, key: str = "") -> None:
        super().__init__(key)
        self.value: Any = MISSING
        self.finished = False

    def get(self) -> Any:
        if self.value is MISSING or not self.finished:
            raise EmptyChannelError(self.key)
        return self.value

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        self.value, self.finished = values[-1], False
        return True

    def finish(self) -> bool:
        if self.finished or self.value is MISSING:
            return False
        self.finished = True
        return True

    def consume(self) -> bool:
        if not self.finished:
            return False
        self.value, self.finished = MISSING, False
        return True

    def is_available(self) -> bool:
        return self.finished and self.value is not MISSING

    def checkpoint(self) -> Any:
        return MISSING if self.value is MISSING else (self.value, self.finished)

    def restore(self, value: Any) -> None:
        if value is MISSING:
            self.value, self.finished = MISSING, False
        else:
            self.value, self.finished = value[0], bool(value[1])

    def fresh(self) -> LastValueAfterFinish:
        return LastValueAfterFinish(self.key)


class NamedBarrierValueAfterFinish(NamedBarrierValue):
    """The join barrier of a deferred node: every source must have written, and the run must
    have nothing else to do."""

    __slots__ = ("finished",)

    def __init__(self, names: frozenset[str], key: str = "") -> None:
        super().__init__(names, key)
        self.finished = False

    def get(self) -> None:
        if not self.is_available():
            raise EmptyChannelError(self.key)

    def finish(self) -> bool:
        if self.finished or self.seen != self.names:
            return False
        self.finished = True
        return True

    def consume(self) -> bool:
        if not self.finished:
            return False
        self.seen, self.finished = set(), False
        return True

    def is_available(self) -> bool:
        return self.finished and self.seen == self.names

    def checkpoint(self) -> Any:
        return (sorted(self.seen), self.finished) if self.seen else MISSING

    def restore(self, value: Any) -> None:
        if value is MISSING:
            self.seen, self.finished = set(), False
        else:
            self.seen, self.finished = set(value[0]), bool(value[1])

    def fresh(self) -> NamedBarrierValueAfterFinish:
        return NamedBarrierValueAfterFinish(self.names, self.key)


__all__ = ["LastValueAfterFinish", "NamedBarrierValueAfterFinish"]
