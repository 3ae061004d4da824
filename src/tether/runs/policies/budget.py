"""Budgets: limits on what a run may spend, and the thread-safe tally of what it has spent."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.errors import ConfigError
from tether.types import CancelReason, Usage

BUDGET_KEYS = frozenset({
    "steps", "wall_time", "node_calls", "tokens", "cost", "tool_calls",
    "errors_per_minute", "tool_calls_per_minute",
})


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits for one run; None means no limit.

    Attributes:
        steps: supersteps (a subgraph's steps count too).
        wall_time: seconds from the run's start.
        node_calls: task executions, for every node (an int) or per node (a dict).
        tokens, cost, tool_calls: totals that nodes report with `tether.charge()`.
        errors_per_minute: failed node attempts in any sliding minute.
        tool_calls_per_minute: reported tool calls in any sliding minute.
    """

    steps: int | None = None
    wall_time: float | None = None
    node_calls: int | Mapping[str, int] | None = None
    tokens: int | None = None
    cost: float | None = None
    tool_calls: int | None = None
    errors_per_minute: int | None = None
    tool_calls_per_minute: int | None = None

    @classmethod
    def parse(cls, *layers: Mapping[str, Any] | None) -> Budget:
        """Merge budget dicts (later ones win), checking every key and value.

        Raises:
            ConfigError: an unknown key, or a value that is not a positive number.
        """
        merged: dict[str, Any] = {}
        for layer in layers:
            for key, value in (layer or {}).items():
                if key not in BUDGET_KEYS:
                    raise ConfigError(f"unknown budget key {key!r}; known: {sorted(BUDGET_KEYS)}")
                merged[key] = value
        if not merged:  # no limit: one shared (frozen) value, not one per run
            return UNLIMITED
        for key, value in merged.items():
            _check(key, value)
        return cls(**merged)

    @property
    def empty(self) -> bool:
        """True when nothing is limited."""
        return all(getattr(self, name) is None for name in BUDGET_KEYS)


UNLIMITED = Budget()
"""The budget of a run that limits nothing (shared: a `Budget` is frozen)."""

# One lock for every run's tally: its sections are a few additions, and a lock per run is
# memory per run (a thousand runs in flight).
_TALLY_LOCK = threading.Lock()


def _check(key: str, value: Any) -> None:
    if value is None:
        return
    if key == "node_calls" and isinstance(value, Mapping):
        for node, limit in value.items():
            _check(f"node_calls[{node!r}]", limit)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"budget {key} must be a non-negative number, not {value!r}")


@dataclass(slots=True)
class Tally:
    """What a run has spent; safe to update from any thread (under `lock`, shared by every
    tally: nothing is called while it is held)."""

    started: float = field(default_factory=time.monotonic)
    steps: int = 0
    node_calls: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    tool_calls: int = 0
    lock: threading.Lock = _TALLY_LOCK

    def snapshot(self) -> Usage:
        """The usage as a value."""
        with self.lock:
            return Usage(self.steps, dict(self.node_calls), self.tokens, self.cost,
                         self.tool_calls, time.monotonic() - self.started)

    def to_dict(self) -> dict[str, Any]:
        """`snapshot().to_dict()`, without the `Usage` in between (what a run's last audit
        event and a budget's evidence carry)."""
        with self.lock:
            return Usage.dict_of(steps=self.steps, node_calls=self.node_calls,
                                 tokens=self.tokens, cost=self.cost, tool_calls=self.tool_calls,
                                 wall_time=time.monotonic() - self.started)


def over(budget: Budget, tally: Tally, limit: str, value: float | None, spent: float,
         **extra: Any) -> CancelReason | None:
    """The budget reason when `spent` passed `value` (None when within the limit)."""
    if value is None or spent <= value:
        return None
    evidence = {"limit": limit, "value": value, "usage": tally.to_dict(), **extra}
    return CancelReason("budget", f"{limit} budget of {_shown(value)} exceeded ({_shown(spent)})",
                        "budget", evidence=evidence)


def _shown(number: float) -> str:
    """A number for a message: 0.12, not 0.12000000000000001 (the evidence keeps it exact)."""
    return str(round(number, 6)) if isinstance(number, float) else str(number)


__all__ = ["BUDGET_KEYS", "UNLIMITED", "Budget", "Tally", "over"]
