"""`BinaryOperatorAggregate`: a state key with a reducer (`Annotated[T, reducer]`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tether.channels.base import MISSING, ValueChannel


class Overwrite:
    """Write this to a reducer key to replace its value instead of folding into it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Overwrite({self.value!r})"


class BinaryOperatorAggregate(ValueChannel):
    """Folds every write of a superstep into the value with `reducer(current, write)`.

    The value starts as `initial()` when the key's type can be built with no arguments (an empty
    list for `list`, 0 for `int`), as LangGraph's does, and empty otherwise.
    """

    __slots__ = ("initial", "reducer")

    def __init__(
        self,
        reducer: Callable[[Any, Any], Any],
        initial: Callable[[], Any] | None = None,
        key: str = "",
    ) -> None:
        super().__init__(key)
        self.reducer = reducer
        self.initial = initial
        if initial is not None:
            self.value = initial()

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        value = self.value
        reducer = self.reducer
        for item in values:
            if isinstance(item, Overwrite):
                value = item.value
            elif value is MISSING:
                value = item
            else:
                value = reducer(value, item)
        self.value = value
        return True

    def fresh(self) -> BinaryOperatorAggregate:
        return BinaryOperatorAggregate(self.reducer, self.initial, self.key)
