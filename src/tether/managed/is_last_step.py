"""`RemainingSteps` and `IsLastStep`: how much of the recursion budget is left, as state keys
(LangGraph's `langgraph.managed.is_last_step`)."""

from __future__ import annotations

from typing import Annotated

from tether.managed.base import ManagedValue, StepBudget


class IsLastStepManager(ManagedValue[bool]):
    """True for a task running in the last superstep the recursion limit allows."""

    @staticmethod
    def get(scratchpad: StepBudget) -> bool:
        """Whether `scratchpad.step` is the last allowed step."""
        return scratchpad.step == scratchpad.stop - 1


class RemainingStepsManager(ManagedValue[int]):
    """The supersteps left before the recursion limit stops the run."""

    @staticmethod
    def get(scratchpad: StepBudget) -> int:
        """`stop - step`: 1 on the last allowed step."""
        return scratchpad.stop - scratchpad.step


IsLastStep = Annotated[bool, IsLastStepManager]
"""A state key that is True on the last superstep the recursion limit allows."""

RemainingSteps = Annotated[int, RemainingStepsManager]
"""A state key holding the number of supersteps left before the recursion limit."""

__all__ = ["IsLastStep", "IsLastStepManager", "RemainingSteps", "RemainingStepsManager"]
