"""The six phases every stop of a run goes through, declared once: their order, and what a
phase with nothing to do records (DESIGN.md §3, "Cancel lifecycle").

Every writer of a run's last cancel events (a run's own end, a paused run cancelled by id, a
run settled by a sweeper) passes them through `complete`, so that a run's audit log always shows
all six phases, in order, whatever stopped it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from tether.types import EventPhase, RunEvent, utcnow

CANCEL_PHASES: tuple[EventPhase, ...] = (
    "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate",
)
"""The phases of a stop, in the order a run's audit log records them."""

NOTHING_TO_DO: Mapping[EventPhase, Mapping[str, Any]] = MappingProxyType({
    "propagate": MappingProxyType({"detail": "the run's scope was already cancelled"}),
    "terminate_node": MappingProxyType({"detail": "no node in flight"}),
    "cleanup": MappingProxyType({"hooks": 0, "detail": "0 hooks"}),
    "checkpoint": MappingProxyType({"detail": "no checkpoint to write"}),
})
"""The detail of a phase that had nothing to do (`request` and `terminate` always have work)."""

_RANK = {phase: i for i, phase in enumerate(CANCEL_PHASES)}

_FILLERS: dict[EventPhase, dict[str, Any]] = {
    phase: dict(detail) for phase, detail in NOTHING_TO_DO.items()}
"""`NOTHING_TO_DO` as plain dicts: each filled event gets a `copy()` (a dict copy of a
read-only view goes through the mapping protocol, key by key)."""


def complete(events: Sequence[RunEvent], at: datetime | None = None) -> tuple[RunEvent, ...]:
    """`events` (a run's last events, ending with `terminate`), with every phase after
    `request` present and the cancel phases in their order.

    A phase with no event gets one saying it had nothing to do, placed where the phase belongs
    and stamped with the time of the event before it.
    Events of the same phase keep their order; events that are not cancel phases stay ahead
    of them. The `request` is the store's own record (made before anything else) and is
    completed only when `events` hold it.

    Args:
        at: the time of an event added first (default: now).
    """
    # Every cancel of every run comes through here, with one of a handful of sequences of
    # phases: what to do with each sequence is worked out once (`_plan`) and kept.
    phases = tuple([event.phase for event in events])
    plan = _PLANS.get(phases)
    if plan is None:
        plan = _plan(phases)
        if len(_PLANS) < _PLANS_KEPT:
            _PLANS[phases] = plan
    if plan is _OUT_OF_ORDER:  # rare: a stop's events are recorded in order
        return _reorder(events, at)
    out: list[RunEvent] = []
    for step in plan:
        if isinstance(step, slice):
            out += events[step]
        else:
            _fill(out, step, at)
    return tuple(out)


_OUT_OF_ORDER: tuple[slice | EventPhase, ...] = (slice(0, 0),)
"""The plan of events whose phases are not in order (they are sorted instead): compared by
identity."""

_PLANS: dict[tuple[EventPhase, ...], tuple[slice | EventPhase, ...]] = {}
"""`complete`'s plan per sequence of phases: slices of the events to keep, and the phases to
fill between them, in order."""

_PLANS_KEPT = 256
"""How many sequences `_PLANS` keeps (a few are seen; the bound is against a pathological
source of sequences)."""


def _plan(phases: tuple[EventPhase, ...]) -> tuple[slice | EventPhase, ...]:
    """What `complete` does with events of these `phases`: one pass in phase order, filling
    each missing phase where it belongs; `_OUT_OF_ORDER` when they are not in order."""
    steps: list[slice | EventPhase] = []
    last = -1
    following = 1  # the next phase to fill: `request` never is
    kept_from = 0  # the first event not in `steps` yet
    for i, phase in enumerate(phases):
        r = _RANK.get(phase, -1)
        if r < last:
            return _OUT_OF_ORDER
        last = r
        if following < r:
            if i > kept_from:
                steps.append(slice(kept_from, i))
                kept_from = i
            steps.extend(p for p in CANCEL_PHASES[following:r] if p in _FILLERS)
            following = r
        if r >= following:
            following = r + 1
    if kept_from < len(phases):
        steps.append(slice(kept_from, len(phases)))
    steps.extend(p for p in CANCEL_PHASES[following:] if p in _FILLERS)
    return tuple(steps)


def _fill(out: list[RunEvent], phase: EventPhase, at: datetime | None) -> None:
    """Append the event of a `phase` that had nothing to do (if it has such an event)."""
    nothing = _FILLERS.get(phase)
    if nothing is not None:
        # Stamped as the phase before it: nothing happened in between.
        since = out[-1].at if out else (at or utcnow())
        out.append(RunEvent(phase, since, None, nothing.copy()))


def _reorder(events: Sequence[RunEvent], at: datetime | None) -> tuple[RunEvent, ...]:
    """`complete` for events not in phase order: grouped by phase, stably."""
    out: list[RunEvent] = []
    by_phase: dict[EventPhase, list[RunEvent]] = {}
    for event in events:  # one pass: stable, so events of one phase keep their order
        if event.phase in _RANK:
            by_phase.setdefault(event.phase, []).append(event)
        else:
            out.append(event)
    for phase in CANCEL_PHASES:
        mine = by_phase.get(phase)
        if mine:
            out.extend(mine)
        else:
            _fill(out, phase, at)
    return tuple(out)


__all__ = ["CANCEL_PHASES", "NOTHING_TO_DO", "complete"]
