"""Policies: the automatic reasons to stop a run — budgets, loop detection, guards and rate
limits — each going through the run's one cancel path, each leaving its evidence on the run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.config import RunConfig
from tether.engine.task import Task
from tether.runs.policies.budget import Budget, Tally, over
from tether.runs.policies.guards import Guard, check
from tether.runs.policies.loops import LoopDetector, LoopSettings
from tether.runs.policies.rates import Rate
from tether.types import CancelReason, Usage

Stop = Callable[[CancelReason], None]


@dataclass(frozen=True, slots=True)
class PolicyDefaults:
    """A graph's policies as `compile()` sets them; a run's config overrides them key by key.

    Attributes:
        budget: default limits (see `Budget`).
        loop_detection: default loop detection settings, or False for none.
        guards: callables that may veto a step's writes.
    """

    budget: Mapping[str, Any] = field(default_factory=dict)
    loop_detection: Mapping[str, Any] | bool | None = None
    guards: tuple[Guard, ...] = ()

    def for_run(self, config: RunConfig, stop: Stop) -> Policies:
        """The policies of one run with `config`; `stop` cancels it (from any thread).

        Raises:
            ConfigError: a budget or loop detection key or value is malformed.
        """
        return Policies(Budget.parse(self.budget, config.budget),
                        LoopSettings.parse(self.loop_detection, config.loop_detection),
                        self.guards, stop)


class Policies:
    """One run's policies: the engine's `StepHooks` and the nodes' `Meter` in one object.

    Args:
        budget: the run's limits.
        loops: loop detection settings (None: off).
        guards: callables that may veto a step's writes.
        stop: cancels the run (durably first) — called from any thread.
    """

    def __init__(self, budget: Budget, loops: LoopSettings | None, guards: Sequence[Guard],
                 stop: Stop) -> None:
        self.budget = budget
        self.guards = tuple(guards)
        self.stop = stop
        self.tally = Tally()
        self.detector = LoopDetector(loops) if loops is not None else None
        self._errors: Rate | None = None
        self._tools: Rate | None = None

    # -- Meter: what nodes report ---------------------------------------------------------

    def charge(self, tokens: int, cost: float, tool_calls: int) -> None:
        """Count reported usage; past a limit, cancel the run (kind `budget`/`policy`)."""
        tally, budget = self.tally, self.budget
        with tally.lock:
            tally.tokens += tokens
            tally.cost += cost
            tally.tool_calls += tool_calls
            spent = (tally.tokens, tally.cost, tally.tool_calls)
        reason = (over(budget, tally, "tokens", budget.tokens, spent[0])
                  or over(budget, tally, "cost", budget.cost, spent[1])
                  or over(budget, tally, "tool_calls", budget.tool_calls, spent[2]))
        if reason is None and tool_calls and budget.tool_calls_per_minute is not None:
            if self._tools is None:
                self._tools = Rate()
            rate = self._tools.add(tool_calls)
            if rate > budget.tool_calls_per_minute:
                reason = _rate("tool_calls_per_minute", budget.tool_calls_per_minute, rate)
        if reason is not None:
            self.stop(reason)

    def usage(self) -> Usage:
        """What the run has spent."""
        return self.tally.snapshot()

    # -- StepHooks: what the engine asks ----------------------------------------------------

    def before_step(self, step: int, tasks: Sequence[Task],
                    values: Mapping[str, Any]) -> CancelReason | None:
        """Steps and node-call budgets, then repeated-state detection."""
        tally, budget = self.tally, self.budget
        if budget.steps is not None and tally.steps >= budget.steps:
            return over(budget, tally, "steps", budget.steps, tally.steps + 1)
        with tally.lock:
            calls = tally.node_calls
            breach = _breach(budget, calls, tasks) if budget.node_calls is not None else None
            if breach is None:
                for task in tasks:
                    calls[task.name] = calls.get(task.name, 0) + 1
                tally.steps += 1
        if breach is not None:
            node, limit, spent = breach
            return over(budget, tally, "node_calls", limit, spent, node=node)
        return self.detector.before_step(step, tasks) if self.detector is not None else None

    def before_commit(self, step: int, tasks: Sequence[Task],
                      values: Mapping[str, Any]) -> CancelReason | None:
        """Guards see the step's proposed writes."""
        return check(self.guards, step, tasks, values) if self.guards else None

    def after_commit(self, step: int, changed: frozenset[str],
                     values: Mapping[str, Any]) -> CancelReason | None:
        """Steps that change nothing."""
        return self.detector.after_commit(step, changed) if self.detector is not None else None

    def task_failed(self, task: Task, error: BaseException) -> CancelReason | None:
        """Failed attempts per minute."""
        limit = self.budget.errors_per_minute
        if limit is None:
            return None
        if self._errors is None:
            self._errors = Rate()
        rate = self._errors.add()
        if rate > limit:
            return _rate("errors_per_minute", limit, rate, node=task.name,
                         error=f"{type(error).__name__}: {error}")
        return None


def _breach(budget: Budget, calls: Mapping[str, int],
            tasks: Sequence[Task]) -> tuple[str, int, int] | None:
    """The first node whose calls this step would take past its limit."""
    wanted: dict[str, int] = {}
    for task in tasks:
        wanted[task.name] = wanted.get(task.name, 0) + 1
    for name, count in wanted.items():
        limit = budget.node_limit(name)
        if limit is not None and calls.get(name, 0) + count > limit:
            return name, limit, calls.get(name, 0) + count
    return None


def _rate(limit: str, value: int, rate: int, **extra: Any) -> CancelReason:
    return CancelReason("policy", f"{limit} limit of {value} exceeded ({rate} in the last minute)",
                        "rate_limit", evidence={"limit": limit, "value": value, "rate": rate,
                                                **extra})


__all__ = ["Budget", "Guard", "LoopSettings", "Policies", "PolicyDefaults"]
