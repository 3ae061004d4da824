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
    when = at or utcnow()
    others = [e for e in events if e.phase not in _RANK]
    phased = sorted((e for e in events if e.phase in _RANK), key=lambda e: _RANK[e.phase])
    out: list[RunEvent] = list(others)
    for phase in CANCEL_PHASES:
        mine = [e for e in phased if e.phase == phase]
        if not mine and phase in NOTHING_TO_DO:
            # Stamped as the phase before it: nothing happened in between.
            since = out[-1].at if out else when
            mine = [RunEvent(phase, since, None, dict(NOTHING_TO_DO[phase]))]
        elif not mine:
            continue
        out.extend(mine)
    return tuple(out)


__all__ = ["CANCEL_PHASES", "NOTHING_TO_DO", "complete"]
