"""What the engine asks its run's policies at each step (implemented by `tether.runs`).

Every answer is either None (go on) or a `CancelReason`: the loop then stops the run through the
ordinary cancel path (`RunHost.stop`), so a budget, a loop detector or a guard ends a run
exactly as a user's cancel does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tether.engine.task import Task
from tether.types import CancelReason


class StateView(Protocol):
    """The state a step starts from, as `before_step` sees it (the loop's `ChannelState`)."""

    @property
    def values(self) -> dict[str, Any]:
        """The state's values (read only)."""

    @property
    def plain_inputs(self) -> bool:
        """Whether the input of a task of a node without an input schema is a copy of
        `values` (no managed value added)."""

    @property
    def version(self) -> int:
        """How many changes `values` has seen (each one moves it by one)."""

    @property
    def written(self) -> set[str] | None:
        """The keys the last change of `values` may have replaced (channels that are no
        state key among them), or None when unknown (any key)."""

    def appended(self, key: str, value: Any) -> tuple[int, int] | None:
        """When `value` is the value of `key` and the last commit made it by appending items
        to a list: the id of that list and how many items were appended; else None. What
        lets a fingerprint of the state extend the hash of that list instead of comparing."""


class StepHooks(Protocol):
    """A run's policies, as the superstep loop consults them."""

    #: Whether `after_commit` needs to know if a step changed a state value (False: it is not
    #: asked, and the loop does not compare old and new values).
    watches_progress: bool

    def before_step(self, step: int, tasks: Sequence[Task],
                    state: StateView) -> CancelReason | None:
        """The tasks of `step` are about to run (budgets on steps and node calls, loops)."""

    def before_commit(self, step: int, tasks: Sequence[Task],
                      values: Mapping[str, Any]) -> CancelReason | None:
        """The step's tasks finished; their writes are not applied yet (guards)."""

    def after_commit(self, step: int, progressed: bool,
                     values: Mapping[str, Any]) -> CancelReason | None:
        """The step's writes were applied; `progressed`: whether they changed a state value
        (asked only while `watches_progress`: a step's progress is compared for it alone)."""

    def task_failed(self, task: Task, error: BaseException) -> CancelReason | None:
        """An attempt of `task` failed (error rate limits)."""
