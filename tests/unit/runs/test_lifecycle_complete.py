"""`lifecycle.complete` takes one pass over events already in phase order (a stop's usual case)
and sorts the others: both give what the plain definition gives, for every order of phases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tether import lifecycle
from tether.lifecycle import CANCEL_PHASES, NOTHING_TO_DO, complete
from tether.types import EventPhase, RunEvent

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _reference(events: list[RunEvent], at: datetime) -> tuple[RunEvent, ...]:
    # The definition, spelled plainly: others first, then each phase's events in order or,
    # for a phase with none, its nothing-to-do event stamped as the event before it.
    out = [e for e in events if e.phase not in CANCEL_PHASES]
    for phase in CANCEL_PHASES:
        mine = [e for e in events if e.phase == phase]
        if mine:
            out.extend(mine)
        elif phase in NOTHING_TO_DO:
            out.append(RunEvent(phase, out[-1].at if out else at, None,
                                dict(NOTHING_TO_DO[phase])))
    return tuple(out)


def _events(phases: tuple[str, ...]) -> list[RunEvent]:
    return [RunEvent(phase, _T0 + timedelta(seconds=i), f"n{i}", {"i": i})  # type: ignore[arg-type]
            for i, phase in enumerate(phases)]


def test_complete_matches_the_definition_for_every_order() -> None:
    pool: tuple[str, ...] = (*CANCEL_PHASES, "start", "terminate_node")
    at = _T0 - timedelta(seconds=1)
    for size in range(4):
        for phases in itertools.permutations(pool, size):
            events = _events(phases)
            assert complete(events, at) == _reference(events, at), phases


def test_events_in_order_take_the_single_pass() -> None:
    calls: list[int] = []
    original = lifecycle._reorder
    try:
        def spy(events: list[RunEvent], at: datetime | None) -> tuple[RunEvent, ...]:
            calls.append(1)
            return original(events, at)
        lifecycle._reorder = spy  # type: ignore[assignment]
        phases: tuple[EventPhase, ...] = ("propagate", "terminate_node", "checkpoint",
                                          "terminate")
        complete(_events(phases), _T0)
        assert calls == []
        complete(_events(("checkpoint", "propagate")), _T0)
        assert calls == [1]
    finally:
        lifecycle._reorder = original  # type: ignore[assignment]
