"""Managed values: the step arithmetic, and how a state schema declares them."""

import operator
from typing import Annotated, TypedDict

from tether.graph.schema import schema_of
from tether.managed import IsLastStep, ManagedValue, RemainingSteps, StepBudget, is_managed_value
from tether.managed.is_last_step import IsLastStepManager, RemainingStepsManager


def test_remaining_steps_is_what_is_left_before_stop() -> None:
    assert RemainingStepsManager.get(StepBudget(step=1, stop=6)) == 5
    assert RemainingStepsManager.get(StepBudget(step=5, stop=6)) == 1


def test_is_last_step_only_on_the_step_before_stop() -> None:
    assert IsLastStepManager.get(StepBudget(step=5, stop=6)) is True
    assert IsLastStepManager.get(StepBudget(step=4, stop=6)) is False


def test_managed_value_classes_are_recognised_and_plain_types_are_not() -> None:
    assert is_managed_value(RemainingStepsManager)
    assert not is_managed_value(int)
    assert not is_managed_value(operator.add)
    assert issubclass(IsLastStepManager, ManagedValue)


class State(TypedDict):
    log: Annotated[list, operator.add]
    remaining_steps: RemainingSteps
    last: IsLastStep


def test_a_schema_keeps_managed_keys_apart_from_its_channels() -> None:
    schema = schema_of(State)
    assert schema.keys == ("log",)
    assert set(schema.channels) == {"log"}
    assert schema.managed == {"remaining_steps": RemainingStepsManager,
                              "last": IsLastStepManager}


def test_a_schema_instance_carries_the_managed_values_it_is_given() -> None:
    schema = schema_of(State)
    built = schema.build({"log": [1], "remaining_steps": 3, "other": 0})
    assert built == {"log": [1], "remaining_steps": 3}
