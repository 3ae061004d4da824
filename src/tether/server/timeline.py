"""A run's timeline: its supersteps and their tasks in time, with what each step changed.

Built from what lasts — the checkpoints the run wrote (one per completed superstep, stamped with
its time and the tasks that produced it), its final checkpoint's pending writes and its audit
log — so a run's timeline reads the same after a restart, and for runs that workers drove.
While the server still holds the run's stream, the `tasks` events there (stamped when they
arrived) give each task its own start and end; otherwise a task spans its step.

Task states: `done`, `running`, `cancelled` (stopped by the cancel), `failed` (raised),
`abandoned` (a thread that would not stop, left behind), `interrupted` (paused for input),
`kept` (finished before a stop in a step that did not complete: its writes were kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.server.statediff import diff
from tether.types import RunEvent, RunInfo, RunSnapshot, RunStatus

MAX_STEPS = 200
"""The most recent steps a timeline shows."""

_SKEW = 0.005
"""Seconds a task's start may precede its step's recorded start (clocks read apart)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One checkpoint, as the timeline reads it.

    Attributes:
        tasks: the tasks whose writes made this checkpoint (None for the input step).
        values: the state (JSON-ready, engine channels left out).
    """

    checkpoint_id: str
    step: int
    source: str
    created_at: datetime
    tasks: tuple[str, ...] | None
    next: tuple[str, ...]
    values: Any
    run_id: str | None = None


@dataclass(slots=True)
class Span:
    """One task as the live stream saw it (epoch seconds)."""

    task_id: str
    name: str
    started: float
    ended: float | None = None
    failed: bool = False
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the run's unfinished last step ended, from its record, snapshot and audit log."""

    status: RunStatus
    ended_at: datetime | None
    cancelled: frozenset[str] = frozenset()
    kept: frozenset[str] = frozenset()
    abandoned: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    stopped_at: dict[str, datetime] = field(default_factory=dict)


def outcome_of(info: RunInfo, kept: RunSnapshot | None, events: Sequence[RunEvent],
               failed: Iterable[str] = ()) -> Outcome:
    """What happened to each task of the run's last, unfinished step."""
    abandoned: set[str] = set()
    stopped: dict[str, datetime] = {}
    ended = info.ended_at
    for event in events:
        if event.phase == "terminate_node" and event.node:
            stopped[event.node] = event.at
            if event.detail.get("how") == "abandoned":
                abandoned.add(event.node)
        if event.phase == "finish" and ended is None:
            ended = event.at  # a paused run has no end; its clock stops here
    cancelled = frozenset(kept.cancelled_tasks) if kept is not None else frozenset()
    finished = frozenset(w.node for w in kept.pending_writes) if kept is not None else frozenset()
    return Outcome(info.status, ended, cancelled, finished - cancelled, frozenset(abandoned),
                   frozenset(failed), stopped)


def build(info: RunInfo, points: Sequence[Point], base: Point | None, outcome: Outcome, *,
          spans: Sequence[Span], now: datetime) -> dict[str, Any]:
    """The timeline of a run.

    Args:
        points: the run's checkpoints, oldest first (at most `MAX_STEPS` + 1 are used).
        base: the checkpoint the run started from (another run's, or None for a new thread).
        outcome: how its unfinished last step ended.
        spans: tasks seen on the live stream, if the server still holds it.
    """
    truncated = len(points) > MAX_STEPS
    if truncated:
        base, points = points[-MAX_STEPS - 1], points[-MAX_STEPS:]
    started = info.started_at or info.created_at
    steps: list[dict[str, Any]] = []
    previous = base
    for point in points:
        begin = max(previous.created_at, started) if previous is not None else started
        names = point.tasks or ()
        steps.append(_step(point, begin, point.created_at, [
            _task(name, "done", begin, point.created_at, spans) for name in names
        ], previous))
        previous = point
    last = points[-1] if points else base
    if last is not None and last.next and _unfinished(outcome.status):
        begin = max(last.created_at, started)
        end = outcome.ended_at
        tasks = [_task(name, _state(name, outcome), begin,
                       outcome.stopped_at.get(name, end), spans) for name in last.next]
        steps.append({"step": last.step + 1, "checkpoint_id": None, "source": "loop",
                      "started_at": begin.isoformat(),
                      "ended_at": end.isoformat() if end else None, "completed": False,
                      "tasks": tasks, "changes": []})
    return {"steps": steps, "truncated": truncated, "now": now.isoformat(),
            "live": bool(spans)}


def _unfinished(status: RunStatus) -> bool:
    """Whether the run stopped (or is) inside the step after its last checkpoint."""
    return status not in (RunStatus.SUCCESS, RunStatus.PENDING)


_BY_STATUS = {RunStatus.INTERRUPTED: "interrupted", RunStatus.RUNNING: "running",
              RunStatus.CANCELLING: "running"}


def _state(name: str, outcome: Outcome) -> str:
    for label, names in (("abandoned", outcome.abandoned), ("failed", outcome.failed),
                         ("cancelled", outcome.cancelled), ("kept", outcome.kept)):
        if name in names:
            return label
    # Else as the run: stopped with it (or, in a failed run, by a sibling's failure).
    return _BY_STATUS.get(outcome.status, "cancelled")


def _step(point: Point, begin: datetime, end: datetime, tasks: list[dict[str, Any]],
          previous: Point | None) -> dict[str, Any]:
    before = previous.values if previous is not None else {}
    return {"step": point.step, "checkpoint_id": point.checkpoint_id, "source": point.source,
            "started_at": begin.isoformat(), "ended_at": end.isoformat(), "completed": True,
            "tasks": tasks, "changes": [c.to_json() for c in diff(before, point.values)]}


def _task(name: str, status: str, begin: datetime, end: datetime | None,
          spans: Sequence[Span]) -> dict[str, Any]:
    """A task of a step; its own times when the live stream saw it within the step."""
    low = begin.timestamp() - _SKEW
    high = end.timestamp() + _SKEW if end is not None else float("inf")
    for span in spans:
        if span.name == name and low <= span.started <= high:
            finish = span.ended if span.ended is not None else (
                end.timestamp() if end is not None else None)
            if span.failed:
                status = "failed"
            elif span.interrupted and status != "cancelled":
                status = "interrupted"
            return {"name": name, "status": status, "started_at": _iso(span.started),
                    "ended_at": _iso(finish) if finish is not None else None}
    return {"name": name, "status": status, "started_at": begin.isoformat(),
            "ended_at": end.isoformat() if end is not None else None}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def spans_of(events: Iterable[tuple[float, Any]]) -> list[Span]:
    """Task spans from `(arrival time, tasks-event payload)` pairs, in arrival order."""
    spans: dict[str, Span] = {}
    for at, payload in events:
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            continue
        task_id, name = payload["id"], str(payload.get("name", ""))
        if "input" in payload:
            spans[task_id] = Span(task_id, name, at)
        elif task_id in spans:
            span = spans[task_id]
            span.ended = at
            span.failed = bool(payload.get("error"))
            span.interrupted = bool(payload.get("interrupts"))
    return list(spans.values())


__all__ = ["MAX_STEPS", "Outcome", "Point", "Span", "build", "outcome_of", "spans_of"]
