"""Managed values: state keys the engine computes per task (`RemainingSteps`, `IsLastStep`)."""

from tether.managed.base import ManagedValue, StepBudget, is_managed_value
from tether.managed.is_last_step import IsLastStep, RemainingSteps

__all__ = ["IsLastStep", "ManagedValue", "RemainingSteps", "StepBudget", "is_managed_value"]
