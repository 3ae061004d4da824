"""The channel contract: one small object per state key or trigger, with a documented lifecycle.

Lifecycle of a channel within a run: created empty (or with its initial value), restored from a
checkpoint, then for every superstep `update()` receives all writes of that step at once, in the
engine's deterministic order; `consume()` is called when the channel has triggered a task;
`finish()` when a step leaves nothing else to run (what deferred nodes wait for);
`checkpoint()` gives the value to store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Final


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""The value of an empty channel (never a legal state value)."""


class EmptyChannelError(Exception):
    """Raised by `get()` on a channel that holds no value."""


class BaseChannel(ABC):
    """One state key or trigger of a graph."""

    __slots__ = ("key",)

    def __init__(self, key: str = "") -> None:
        self.key = key

    @abstractmethod
    def get(self) -> Any:
        """The current value. Raises `EmptyChannelError` when empty."""

    @abstractmethod
    def update(self, values: Sequence[Any]) -> bool:
        """Apply all writes of one superstep; return True if the value changed."""

    @abstractmethod
    def checkpoint(self) -> Any:
        """The value to store (`MISSING` when empty)."""

    @abstractmethod
    def restore(self, value: Any) -> None:
        """Load a stored value (`MISSING` for empty)."""

    def is_available(self) -> bool:
        """True when `get()` would return a value."""
        return self.checkpoint() is not MISSING

    def consume(self) -> bool:
        """Called after the channel triggered a task; return True if that changed it."""
        return False

    def finish(self) -> bool:
        """Called when a superstep leaves no other task due: the run is about to end unless
        this channel now triggers one. Return True if that changed it."""
        return False

    def appended_to(self, value: Any) -> tuple[int, int] | None:
        """When `value` is this channel's value and the last update made it by appending items
        to the list the channel held before: the id of that list and how many items were
        appended (what lets a reader that kept that list extend a hash of it instead of
        comparing the lists); else None. A channel may note its appends only once asked: the
        first answer may be None."""
        del value
        return None

    def copy(self) -> BaseChannel:
        """An independent channel with the same configuration and value."""
        clone = self.fresh()
        clone.restore(self.checkpoint())
        return clone

    @abstractmethod
    def fresh(self) -> BaseChannel:
        """An empty channel with the same configuration."""


class ValueChannel(BaseChannel):
    """A channel holding one value (or `MISSING`): what LastValue, reducers and ephemeral
    triggers share; each says only how a step's writes change the value."""

    __slots__ = ("value",)

    def __init__(self, key: str = "") -> None:
        super().__init__(key)
        self.value: Any = MISSING

    def get(self) -> Any:
        if self.value is MISSING:
            raise EmptyChannelError(self.key)
        return self.value

    def checkpoint(self) -> Any:
        return self.value

    def restore(self, value: Any) -> None:
        self.value = value

    def is_available(self) -> bool:
        return self.value is not MISSING
