"""Cancel points of a graph's nodes: where a node can be cancelled, found by running it.

A *cancel point* is a place in one task where a cancel can land: before its node's code runs
(index 0), and, for an async node, each time its coroutine hands control back to the event loop
(index 1, 2, ...: the awaits that suspend). A `Probe` watches a run of an instrumented copy of a
graph (`instrument`): it records the points reached and each task's return value, and can
request the run's cancel at one chosen point, from inside the node, exactly there.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable, Callable, Generator
from contextvars import ContextVar
from typing import Any

from tether import node_context
from tether.engine.spec import NodeSpec
from tether.graph.compiled import CompiledStateGraph


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class CancelPoint:
    """One place a cancel can land.

    Attributes:
        step: the superstep of the task (as its node sees it: `tether.runtime`'s step).
        node: the node's name.
        task: which task of that node in that step (0 unless it ran more than once: `Send`s,
            retries), by start order.
        index: 0 before the node's code runs; n at its n-th suspending await.
    """

    step: int
    node: str
    task: int
    index: int

    def __str__(self) -> str:
        where = "start" if self.index == 0 else f"await #{self.index}"
        which = f"[{self.task}]" if self.task else ""
        return f"{self.node}{which} @ step {self.step}, {where}"


class Probe:
    """Watches one run: the points it reaches, what each task returned, and (given a target)
    the cancel it requests at that point.

    Args:
        target: the point to cancel at, or None to only record.
        cancel: requests the run's cancel (from the node's own thread, any thread).
    """

    def __init__(self, target: CancelPoint | None = None,
                 cancel: Callable[[], None] | None = None) -> None:
        self.target = target
        self._cancel = cancel
        self.points: list[CancelPoint] = []
        self.returns: dict[tuple[str, int, int], Any] = {}
        self.hit = False
        self.finished_first: list[tuple[str, int, int]] = []
        """Async tasks that returned before the target was hit: their writes must be kept."""
        self._tasks: dict[tuple[str, int], int] = {}

    def begin(self) -> tuple[str, int, int]:
        """A task's node starts (in its context): its (node, step, task) key, point 0 reached."""
        ctx = node_context.current()
        node, step = (ctx.node, ctx.step) if ctx is not None else ("?", -1)
        task = self._tasks.get((node, step), 0)
        self._tasks[(node, step)] = task + 1
        key = (node, step, task)
        self.reached(key, 0)
        return key

    def reached(self, key: tuple[str, int, int], index: int) -> None:
        """The task `key` reached its cancel point `index`: recorded, and cancelled there if it
        is the target."""
        point = CancelPoint(key[1], key[0], key[2], index)
        self.points.append(point)
        if point == self.target and not self.hit:
            self.hit = True
            if self._cancel is not None:
                self._cancel()

    def returned(self, key: tuple[str, int, int], value: Any, *, on_loop: bool) -> None:
        """The task `key`'s node returned `value` (`on_loop`: on the run's event loop, where
        the engine sees the answer at once; a worker thread's answer is seen later)."""
        self.returns[key] = value
        if on_loop and not self.hit:
            self.finished_first.append(key)


_probe: ContextVar[Probe | None] = ContextVar("tether_testing_probe", default=None)


def watch(probe: Probe | None) -> Any:
    """Make `probe` watch the runs started from the calling context from now on (None:
    none); returns the token to undo it with `unwatch`."""
    return _probe.set(probe)


def unwatch(token: Any) -> None:
    """Undo `watch`."""
    _probe.reset(token)


class _Counted:
    """An awaitable that drives another, reporting each suspension as a cancel point."""

    __slots__ = ("_inner", "_key", "_probe")

    def __init__(self, inner: Awaitable[Any], probe: Probe, key: tuple[str, int, int]) -> None:
        self._inner, self._probe, self._key = inner, probe, key

    def __await__(self) -> Generator[Any, Any, Any]:
        gen = self._inner.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        index = 0
        while True:
            try:
                yielded = gen.throw(thrown) if thrown is not None else gen.send(sent)
            except StopIteration as stop:
                self._probe.returned(self._key, stop.value, on_loop=True)
                return stop.value
            index += 1
            self._probe.reached(self._key, index)
            try:
                sent, thrown = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 - handed to the node, as an await would
                sent, thrown = None, exc


def _watched(node: NodeSpec) -> NodeSpec:
    func = node.func
    if node.subgraph is not None:
        return node  # its own nodes are not instrumented (the sweep covers one graph)
    if node.is_async:
        async def watched_async(arg: Any, **kwargs: Any) -> Any:
            probe = _probe.get()
            if probe is None:
                return await func(arg, **kwargs)
            key = probe.begin()
            return await _Counted(func(arg, **kwargs), probe, key)

        return dataclasses.replace(node, func=watched_async)

    def watched_sync(arg: Any, **kwargs: Any) -> Any:
        probe = _probe.get()
        if probe is None:
            return func(arg, **kwargs)
        key = probe.begin()
        value = func(arg, **kwargs)
        probe.returned(key, value, on_loop=False)
        return value

    return dataclasses.replace(node, func=watched_sync)


def instrument(graph: CompiledStateGraph) -> CompiledStateGraph:
    """A copy of `graph` whose nodes report their cancel points to the probe being watched
    (and behave as before when none is)."""
    clone = copy.copy(graph)
    spec = graph.spec
    clone.spec = dataclasses.replace(
        spec, nodes={name: _watched(node) for name, node in spec.nodes.items()})
    return clone


__all__ = ["CancelPoint", "Probe", "instrument", "unwatch", "watch"]
