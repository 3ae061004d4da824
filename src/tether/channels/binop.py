"""`BinaryOperatorAggregate`: a state key with a reducer (`Annotated[T, reducer]`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import add
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

    __slots__ = ("_appended", "_notes_appends", "initial", "reducer")

    def __init__(
        self,
        reducer: Callable[[Any, Any], Any],
        initial: Callable[[], Any] | None = None,
        key: str = "",
    ) -> None:
        super().__init__(key)
        self.reducer = reducer
        self.initial = initial
        # Whether updates note their appends: from the first `appended_to` on (a channel no
        # one asks notes nothing). Then (the id of the list the last update appended to, how
        # many items it appended), while the value is what that update made; else None.
        self._notes_appends = False
        self._appended: tuple[int, int] | None = None
        if initial is not None:
            self.value = initial()

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        value = start = self.value
        reducer = self.reducer
        # Whether the new value is `start` with items appended: `operator.add` of exact lists
        # (a list subclass could answer `+` itself; an `Overwrite` replaces the value).
        notes = self._notes_appends
        appends = notes and reducer is add and type(start) is list
        for item in values:
            if isinstance(item, Overwrite):
                value = item.value
                appends = False
            elif value is MISSING:
                value = item
            else:
                if appends and type(item) is not list:
                    appends = False
                value = reducer(value, item)
        self.value = value
        if notes:
            self._appended = (id(start), len(value) - len(start)) if appends else None
        return True

    def restore(self, value: Any) -> None:
        self.value = value
        self._appended = None

    def appended_to(self, value: Any) -> tuple[int, int] | None:
        self._notes_appends = True
        return self._appended if value is self.value else None

    def fresh(self) -> BinaryOperatorAggregate:
        return BinaryOperatorAggregate(self.reducer, self.initial, self.key)
