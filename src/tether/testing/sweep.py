"""The cancel sweep: run a graph once as a reference, then once per cancel point, cancelled
exactly there, and check what every stop must leave behind (`tether.testing.checks`)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.errors import RunCancelled
from tether.graph.compiled import CompiledStateGraph
from tether.testing import checks
from tether.testing.probe import CancelPoint, Probe, instrument, unwatch, watch

REASON = "cancel sweep"
"""The message of every cancel the sweep makes."""

Points = Literal["all", "random"] | Sequence[CancelPoint]


@dataclass(frozen=True, slots=True)
class PointResult:
    """One cancelled run: where it was cancelled, and the first invariant it broke (None:
    none)."""

    point: CancelPoint
    failure: str | None = None
    run_id: str | None = None


@dataclass(slots=True)
class SweepResult:
    """What a sweep found.

    Attributes:
        points: every cancel point of the reference run, in the order reached.
        tried: the points tried, with their outcome, in order.
        reference: what the uncancelled run did.
    """

    points: list[CancelPoint]
    reference: checks.Reference
    tried: list[PointResult] = field(default_factory=list)

    @property
    def failures(self) -> list[PointResult]:
        """The points whose run broke an invariant."""
        return [r for r in self.tried if r.failure is not None]

    @property
    def ok(self) -> bool:
        """True when every point tried kept every invariant."""
        return not self.failures

    def table(self) -> str:
        """The points tried and what became of each, one line each."""
        width = max([len(str(r.point)) for r in self.tried] + [5])
        lines = [f"{'point':<{width}}  result"]
        lines += [f"{r.point!s:<{width}}  {'ok' if r.failure is None else 'FAILED: ' + r.failure}"
                  for r in self.tried]
        return "\n".join(lines)

    def check(self) -> SweepResult:
        """Raise `AssertionError` naming the first counterexample, if any; else self."""
        failed = self.failures
        if failed:
            first = failed[0]
            raise AssertionError(
                f"cancelling at {first.point} (run {first.run_id}): {first.failure}\n"
                f"{self.table()}")
        return self


async def acancel_sweep(graph: CompiledStateGraph, input: Any,
                        config: dict[str, Any] | None = None, *,
                        points: Points = "all", max_examples: int = 20,
                        seed: int | None = 0, raise_on_failure: bool = True,
                        show: bool = True) -> SweepResult:
    """Cancel a run of `graph` at each of its cancel points in turn and check every stop.

    The graph must be deterministic (the same input takes the same path, with the same
    awaits) and compiled with a checkpointer; each run gets a thread of its own. After each
    cancel: the run ends `cancelled` with the sweep's reason and all six phases in its audit
    log; its final checkpoint is a superstep of the reference plus only writes of tasks that
    finished, as the reference wrote them; every cleanup hook ran once; no tool call is left
    dangling; and `resume` reaches the reference's final state.

    Args:
        points: `"all"` (every point the reference reached), `"random"` (`max_examples` of
            them, drawn with hypothesis when it is installed, else with `random`), or a list.
        seed: the seed of `"random"` without hypothesis.
        raise_on_failure: raise `AssertionError` naming the first counterexample.
        show: print the table of points tried.

    Cancellation:
        Cancelling the sweep cancels the run in flight with it (a run the sweep started is
        never left running); no further point is tried.
    """
    if graph.checkpointer is None:
        raise ValueError("cancel_sweep needs a graph compiled with a checkpointer "
                         "(the sweep resumes every cancelled run)")
    watched = instrument(graph)
    prefix = f"sweep-{uuid.uuid4().hex[:8]}"
    reference, found = await _reference(watched, input, config, f"{prefix}-ref")
    result = SweepResult(found, reference)
    target = _Target(watched, input, config, reference)
    for i, point in enumerate(_choose(found, points, max_examples, seed)):
        tried = await target.run(f"{prefix}-{i}", point)
        result.tried.append(tried)
        if tried.failure is not None:
            break
    if show:
        print(result.table())
    return result.check() if raise_on_failure else result


def cancel_sweep(graph: CompiledStateGraph, input: Any, config: dict[str, Any] | None = None,
                 **options: Any) -> SweepResult:
    """`acancel_sweep` from sync code (its own event loop); the same options."""
    return asyncio.run(acancel_sweep(graph, input, config, **options))


def _config(config: dict[str, Any] | None, thread_id: str) -> dict[str, Any]:
    base = {k: v for k, v in (config or {}).items() if k != "run_id"}  # every run its own
    base["configurable"] = {**(base.get("configurable") or {}), "thread_id": thread_id}
    return base


async def _reference(graph: CompiledStateGraph, input: Any, config: dict[str, Any] | None,
                     thread: str) -> tuple[checks.Reference, list[CancelPoint]]:
    probe = Probe()
    cfg = _config(config, thread)
    token = watch(probe)
    try:
        run = graph.astream(input, cfg)
    finally:
        unwatch(token)
    output = await run.result()
    state = await graph.aget_state(cfg)
    steps: dict[int, Any] = {}
    async for snapshot in graph.aget_state_history(cfg):
        steps.setdefault(int((snapshot.metadata or {}).get("step", -99)), snapshot.values)
    ref = checks.Reference(output, state.values, steps, dict(probe.returns))
    events = graph.ledger.events(run.run_id)
    problem = checks.hooks(events, events)
    if problem is not None:
        raise AssertionError(f"the reference run: {problem}")
    return ref, probe.points


def _choose(found: list[CancelPoint], points: Points, max_examples: int,
            seed: int | None) -> list[CancelPoint]:
    if points == "all":
        return list(found)
    if points != "random":
        return list(points)
    unique = list(dict.fromkeys(found))
    if len(unique) <= max_examples:
        return unique
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import strategies as st
    except ImportError:
        return random.Random(seed).sample(unique, max_examples)
    drawn: list[CancelPoint] = []

    @settings(max_examples=max_examples, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(unique))
    def draw(point: CancelPoint) -> None:
        drawn.append(point)

    draw()
    return list(dict.fromkeys(drawn))


@dataclass(frozen=True, slots=True)
class _Target:
    """One cancelled run of the sweep: the graph, its input, and where to cancel it."""

    graph: CompiledStateGraph
    input: Any
    config: dict[str, Any] | None
    reference: checks.Reference

    async def run(self, thread: str, point: CancelPoint) -> PointResult:
        cfg = _config(self.config, thread)
        graph = self.graph
        ids: list[str] = []
        probe = Probe(point, lambda: _cancel(graph, ids[0]))
        token = watch(probe)
        try:
            run = graph.astream(self.input, cfg)
        finally:
            unwatch(token)
        # Its driver is a task of this loop: no node of it runs before the next await.
        ids.append(run_id := run.run_id)
        try:
            await run.result()
        except RunCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - a finding, reported
            return PointResult(point, f"the cancelled run raised {type(exc).__name__}: {exc}",
                               run_id)
        if not probe.hit:
            return PointResult(point, "the point was never reached (is the graph "
                                      "deterministic?)", run_id)
        return PointResult(point, await self.verdict(cfg, run_id, point, probe), run_id)

    async def verdict(self, cfg: dict[str, Any], run_id: str, point: CancelPoint,
                      probe: Probe) -> str | None:
        graph, ref = self.graph, self.reference
        store = graph.ledger
        events = store.events(run_id)
        snapshot = store.load(run_id)
        state = await graph.aget_state(cfg)
        problem = (checks.status(graph.get_run(run_id), REASON) or checks.phases(events)
                   or checks.checkpoint(snapshot, ref, point.node, probe.finished_first)
                   or checks.hooks(events, ())
                   or checks.tool_calls(state.values, bool(state.next)))
        if problem is not None:
            return problem
        try:
            output = await graph.resume(run_id).result()
        except Exception as exc:  # noqa: BLE001 - a finding, reported
            return f"resume raised {type(exc).__name__}: {exc}"
        after = await graph.aget_state(cfg)
        return checks.resumed(output, after.values, ref) or checks.tool_calls(after.values, False)


def _cancel(graph: CompiledStateGraph, run_id: str) -> None:
    graph.cancel(run_id, REASON)


__all__ = ["REASON", "PointResult", "SweepResult", "acancel_sweep", "cancel_sweep"]
