"""Policies: the automatic reasons to stop a run — budgets, loop detection, guards and rate
limits — each going through the run's one cancel path, each leaving its evidence on the run."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from time import monotonic
from typing import Any

from tether.config import RunConfig
from tether.engine.hooks import StateView
from tether.engine.task import Task
from tether.runs.policies.budget import Budget, Tally, over
from tether.runs.policies.guards import Guard, check, check_one
from tether.runs.policies.loops import LoopDetector, LoopSettings
from tether.runs.policies.rates import Marks, Rate
from tether.types import CancelReason, Usage

Stop = Callable[[CancelReason], None]
Hook = Callable[[int, Sequence[Task], Mapping[str, Any]], "CancelReason | None"]
_INF = float("inf")
_NO_LIMIT = sys.maxsize
"""The limit of steps or node calls that are not limited: a count no run reaches."""


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
    # The plan of a run whose config overrides nothing (most runs), made by the first one: the
    # defaults are frozen, so it never changes. Not part of the value (equality, repr).
    _bare: PolicyPlan | None = field(default=None, init=False, repr=False, compare=False)

    def for_run(self, config: RunConfig, stop: Stop) -> Policies:
        """The policies of one run with `config`; `stop` cancels it (from any thread).

        Raises:
            ConfigError: a budget or loop detection key or value is malformed.
        """
        if not config.budget and config.loop_detection is None:
            plan = self._bare
            if plan is None:
                plan = PolicyPlan.of(Budget.parse(self.budget),
                                     LoopSettings.parse(self.loop_detection), self.guards)
                object.__setattr__(self, "_bare", plan)  # a cache on a frozen value
            return Policies.planned(plan, stop)
        return Policies.planned(PolicyPlan.of(
            Budget.parse(self.budget, config.budget),
            LoopSettings.parse(self.loop_detection, config.loop_detection), self.guards), stop)


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """What a run's policies decide once from their settings, before the run counts anything:
    shared by every run with the same settings (no limit is looked up on the per-step path).

    Attributes:
        budget: the limits.
        loops: loop detection settings (None: off).
        guards: callables that may veto a step's writes.
        tools_limit: the tool calls allowed per minute (None: no window is kept).
        calls_each: node-call limits per node name (None unless given per node).
        calls_all: one node-call limit for every node (None unless given as one number).
        spend_limited: whether tokens, cost or tool calls are limited at all.
        totals: the limits of tokens, cost and tool calls as numbers (no limit: infinity).
        repeats: whether repeated inputs are watched (`max_repeats`).
        progress: whether steps that change nothing are counted (`no_progress_steps`).
        before_commit: the guards' check of a step's writes, or a hook with nothing to check.
    """

    budget: Budget
    loops: LoopSettings | None
    guards: tuple[Guard, ...]
    tools_limit: int | None
    calls_each: Mapping[str, int] | None
    calls_all: int | None
    spend_limited: bool
    totals: tuple[float, float, float]
    repeats: bool
    progress: bool
    before_commit: Hook

    @classmethod
    def of(cls, budget: Budget, loops: LoopSettings | None,
           guards: Sequence[Guard]) -> PolicyPlan:
        """The plan of policies with these settings."""
        guards = tuple(guards)
        limits = budget.node_calls
        each: Mapping[str, int] | None = None
        every: int | None = None
        if isinstance(limits, Mapping):
            # A node given no limit (None) is not limited: it is left out, as unnamed ones.
            each = {name: limit for name, limit in limits.items() if limit is not None}
        else:
            every = limits
        return cls(
            budget=budget, loops=loops, guards=guards,
            tools_limit=budget.tool_calls_per_minute, calls_each=each, calls_all=every,
            spend_limited=any(limit is not None for limit in (
                budget.tokens, budget.cost, budget.tool_calls, budget.tool_calls_per_minute)),
            totals=(_INF if budget.tokens is None else budget.tokens,
                    _INF if budget.cost is None else budget.cost,
                    _INF if budget.tool_calls is None else budget.tool_calls),
            repeats=loops is not None and loops.max_repeats is not None,
            progress=loops is not None and loops.no_progress_steps is not None,
            # The hook is the guards' check itself (a partial is called in C).
            before_commit=(partial(check_one, guards[0]) if len(guards) == 1
                           else partial(check, guards) if guards else _nothing),
        )


class Policies:
    """One run's policies: the engine's `StepHooks` and the nodes' `Meter` in one object.

    What a step asks is decided once here, from the limits, so that a step pays only for the
    policies that are on: no limit is looked up, and no clock read, on the per-step path. Where
    one policy alone answers a hook, the hook is that policy's own check (`before_commit`: the
    guards' `check`, which sees the step's proposed writes), not a method that calls it.

    Args:
        budget: the run's limits.
        loops: loop detection settings (None: off).
        guards: callables that may veto a step's writes.
        stop: cancels the run (durably first) — called from any thread.
    """

    __slots__ = ("_calls_all", "_calls_each", "_errors", "_most_calls", "_most_cost",
                 "_most_tokens", "_progress", "_repeats", "_spend_limited", "_steps_limit",
                 "_tools", "_tools_limit", "before_commit", "budget", "detector", "guards",
                 "stop", "tally", "watches_progress")

    def __init__(self, budget: Budget, loops: LoopSettings | None, guards: Sequence[Guard],
                 stop: Stop) -> None:
        self._adopt(PolicyPlan.of(budget, loops, guards), stop)

    @classmethod
    def planned(cls, plan: PolicyPlan, stop: Stop) -> Policies:
        """The policies of one run from a `plan` (shared by runs with the same settings)."""
        policies = cls.__new__(cls)
        policies._adopt(plan, stop)
        return policies

    def _adopt(self, plan: PolicyPlan, stop: Stop) -> None:
        self.budget = plan.budget
        self.guards = plan.guards
        self.stop = stop
        self.tally = Tally()
        loops = plan.loops
        detector = self.detector = LoopDetector(loops) if loops is not None else None
        self._errors: Rate | None = None
        # The tool call window, made only when its rate is limited: its marks, appended by
        # `charge` under the tally's lock, and the limit.
        tools_limit = plan.tools_limit
        self._tools = Marks() if tools_limit is not None else None
        self._tools_limit = tools_limit if tools_limit is not None else 0
        # Invariant: `_calls_each` is None unless limits are given per node; `_calls_all` is
        # the limit of every node otherwise (no limit: `_NO_LIMIT`, which no count reaches:
        # an int, as an int compared with a float is a slow compare).
        self._calls_each: Mapping[str, int] | None = plan.calls_each
        self._calls_all: int = _NO_LIMIT if plan.calls_all is None else plan.calls_all
        self._spend_limited = plan.spend_limited
        steps = plan.budget.steps
        self._steps_limit: int = _NO_LIMIT if steps is None else steps
        # The totals' limits as numbers (no limit: infinity), so that `charge` compares three
        # numbers and looks nothing up; the budget keeps the limits as they were given.
        self._most_tokens, self._most_cost, self._most_calls = plan.totals
        self._repeats = detector if plan.repeats else None
        self._progress = detector if plan.progress else None
        # Whether `after_commit` needs to know if a step changed the state (the no-progress
        # detector is on).
        self.watches_progress = plan.progress
        # The guards see the step's proposed writes: the hook is their check itself, or
        # nothing when there is no guard.
        self.before_commit: Hook = plan.before_commit

    # -- Meter: what nodes report ---------------------------------------------------------

    def charge(self, tokens: int, cost: float, tool_calls: int) -> None:
        """Count reported usage; past a limit, cancel the run (kind `budget`/`policy`)."""
        tally = self.tally
        lock = tally.lock
        lock.acquire()  # (not `with`: its protocol calls cost more than the section itself)
        try:
            spent_tokens = tally.tokens = tally.tokens + tokens
            spent_cost = tally.cost = tally.cost + cost
            spent_calls = tally.tool_calls = tally.tool_calls + tool_calls
            if tool_calls and (tools := self._tools) is not None:  # the window's mark,
                tools.marks.append((monotonic(), spent_calls))  # in the totals' order
        finally:
            lock.release()
        if not self._spend_limited:
            return
        # Three numbers compared (no limit: infinity), nothing looked up on the usual path.
        if (spent_tokens > self._most_tokens or spent_cost > self._most_cost
                or spent_calls > self._most_calls):
            reason = self._past_total(spent_tokens, spent_cost, spent_calls)
            if reason is not None:
                self.stop(reason)
        elif tool_calls and tools is not None:
            # No window holds more calls than the run has reported in all: the window is
            # counted only once that total is past the limit.
            limit = self._tools_limit
            if spent_calls > limit:
                rate = tools.count(spent_calls)
                if rate > limit:
                    self.stop(_rate("tool_calls_per_minute", limit, rate))
            elif len(tools.marks) >= tools.prune_at:
                tools.prune()

    def _past_total(self, spent_tokens: int, spent_cost: float,
                    spent_calls: int) -> CancelReason | None:
        """The reason of a charge that went past a total (the first total past its limit)."""
        budget, tally = self.budget, self.tally
        return (over(budget, tally, "tokens", budget.tokens, spent_tokens)
                or over(budget, tally, "cost", budget.cost, spent_cost)
                or over(budget, tally, "tool_calls", budget.tool_calls, spent_calls))

    def usage(self) -> Usage:
        """What the run has spent."""
        return self.tally.snapshot()

    # -- StepHooks: what the engine asks ----------------------------------------------------

    def before_step(self, step: int, tasks: Sequence[Task],
                    state: StateView | None) -> CancelReason | None:
        """Steps and node-call budgets, then repeated-state detection."""
        tally = self.tally
        if tally.steps >= self._steps_limit:  # (no limit: `_NO_LIMIT`, never reached)
            return over(self.budget, tally, "steps", self.budget.steps, tally.steps + 1)
        if len(tasks) == 1:  # the common step: one task, counted here (no call, no dict)
            task = tasks[0]
            name = task.node.name
            each = self._calls_each
            most = self._calls_all if each is None else each.get(name, _NO_LIMIT)
            lock = tally.lock
            lock.acquire()  # (as in `charge`)
            try:
                calls = tally.node_calls
                spent = calls.get(name, 0) + 1
                within = spent <= most
                if within:
                    calls[name] = spent
                    tally.steps += 1
            finally:
                lock.release()
            if not within:
                return over(self.budget, tally, "node_calls", most, spent, node=name)
            repeats = self._repeats
            return None if repeats is None else repeats.before_task(step, task, state)
        with tally.lock:
            breach = self._count(tally.node_calls, tasks)
            if breach is None:
                tally.steps += 1
        if breach is not None:
            node, most, spent = breach
            return over(self.budget, tally, "node_calls", most, spent, node=node)
        repeats = self._repeats
        return None if repeats is None else repeats.before_step(step, tasks, state)

    def _count(self, calls: dict[str, int],
               tasks: Sequence[Task]) -> tuple[str, int, int] | None:
        """Count the node calls of a step of several tasks, unless one node would go past its
        limit: that node, its limit and the calls it would make (nothing is counted then)."""
        each, every = self._calls_each, self._calls_all
        wanted: dict[str, int] = {}
        for task in tasks:
            wanted[task.node.name] = wanted.get(task.node.name, 0) + 1
        if each is not None or every != _NO_LIMIT:
            for name, count in wanted.items():
                limit = every if each is None else each.get(name, _NO_LIMIT)
                if calls.get(name, 0) + count > limit:
                    return name, limit, calls.get(name, 0) + count
        for name, count in wanted.items():
            calls[name] = calls.get(name, 0) + count
        return None

    def after_commit(self, step: int, progressed: bool,
                     values: Mapping[str, Any]) -> CancelReason | None:
        """Steps that change nothing (the loop asks only while `watches_progress`)."""
        progress = self._progress
        if progress is None or (progressed and not progress.still):  # the usual step: no call
            return None
        return progress.after_commit(step, progressed)

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


def _nothing(step: int, tasks: Sequence[Task], values: Mapping[str, Any]) -> None:
    """A hook with nothing to check."""
    del step, tasks, values


def _rate(limit: str, value: int, rate: int, **extra: Any) -> CancelReason:
    return CancelReason("policy", f"{limit} limit of {value} exceeded ({rate} in the last minute)",
                        "rate_limit", evidence={"limit": limit, "value": value, "rate": rate,
                                                **extra})


__all__ = ["Budget", "Guard", "LoopSettings", "Policies", "PolicyDefaults", "PolicyPlan"]
