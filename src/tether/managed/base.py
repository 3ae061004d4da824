"""`ManagedValue`: a state key whose value the engine computes for each task instead of reading
it from a channel (LangGraph's `langgraph.managed.base`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from inspect import isclass
from typing import Any, Generic, TypeGuard, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class StepBudget:
    """Where a task stands in its run's recursion budget (what a managed value is computed from).

    Attributes:
        step: the superstep the task runs in.
        stop: the first superstep the budget no longer allows: a fresh run from step -1 with
            `recursion_limit` L stops before step L + 1, as LangGraph counts.
    """

    step: int
    stop: int


class ManagedValue(ABC, Generic[V]):
    """A value the engine gives a node under a state key, computed, never stored.

    Declared in a state schema as `Annotated[T, SomeManagedValue]`; the key is not a channel:
    it is absent from the input, the output and checkpoints, and a node cannot write it.
    """

    @staticmethod
    @abstractmethod
    def get(scratchpad: StepBudget) -> V:
        """The value for a task at `scratchpad.step` (LangGraph names the argument so)."""


ManagedValueSpec = type[ManagedValue[Any]]
"""A managed value's class, as found in a schema's annotation."""


def is_managed_value(value: Any) -> TypeGuard[ManagedValueSpec]:
    """Whether `value` (an item of an `Annotated[...]`'s metadata) is a managed value class."""
    return isclass(value) and issubclass(value, ManagedValue)


__all__ = ["ManagedValue", "ManagedValueSpec", "StepBudget", "is_managed_value"]
