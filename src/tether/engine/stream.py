"""Stream chunks: what the engine emits for each stream mode, in LangGraph's shapes."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tether.constants import INTERRUPT
from tether.engine.task import PULL, PUSH, Task
from tether.runtime import touch
from tether.types import Interrupt

Sink = Callable[[tuple[str, ...], str, Any], None]
"""Receives (namespace, mode, payload) for every chunk."""


def drop(_ns: tuple[str, ...], _mode: str, _payload: Any) -> None:
    """A sink for chunks nobody reads."""
    return


def _now() -> str:
    return datetime.now(UTC).isoformat()


@functools.lru_cache(maxsize=64)
def _mode_flags(modes: tuple[str, ...]) -> tuple[frozenset[str], bool, bool, bool, bool, bool,
                                                  bool, bool, bool]:
    # One answer per combination of modes, not one per run (and per subgraph level): the set,
    # then the flags in the order `Emitter.__init__` unpacks them.
    mode_set = frozenset(modes)
    debug = "debug" in mode_set
    return (mode_set, "values" in mode_set, "updates" in mode_set, "custom" in mode_set, debug,
            "tasks" in mode_set or debug, "checkpoints" in mode_set or debug,
            "lifecycle" in mode_set, "messages" in mode_set)


class Emitter:
    """Builds chunks only for the modes someone asked for, and hands them to the sink.

    Args:
        sink: where chunks go (the run's buffer).
        modes: the stream modes requested.
        ns: the namespace of this graph (empty for the root, one entry per subgraph level).
    """

    __slots__ = ("checkpoints", "custom", "debug", "lifecycle", "messages", "modes", "ns", "sink",
                 "tasks", "updates", "values")

    def __init__(self, sink: Sink, modes: Iterable[str], ns: tuple[str, ...] = ()) -> None:
        self.sink = sink
        self.ns = ns
        (self.modes, self.values, self.updates, self.custom, self.debug, self.tasks,
         self.checkpoints, self.lifecycle, self.messages) = _mode_flags(
            modes if isinstance(modes, tuple) else tuple(modes))

    def child(self, ns: tuple[str, ...]) -> Emitter:
        """The emitter for a subgraph running under namespace `ns`."""
        return Emitter(self.sink, self.modes, ns)

    def emit_values(self, values: Any) -> None:
        """A whole-state chunk after a superstep."""
        if self.values:
            self.sink(self.ns, "values", values)

    def emit_update(self, task: Task, update: Mapping[str, Any] | None) -> None:
        """A per-node chunk when a task finishes (`cached` when replayed on resume)."""
        if not self.updates:
            return
        chunk: dict[str, Any] = {task.name: update}
        if task.cached:
            chunk["__metadata__"] = {"cached": True}
        self.sink(self.ns, "updates", chunk)

    def emit_interrupts(self, interrupts: tuple[Interrupt, ...]) -> None:
        """The `__interrupt__` update chunk of a paused run."""
        if self.updates:
            self.sink(self.ns, "updates", {INTERRUPT: interrupts})

    def emit_custom(self, chunk: Any) -> None:
        """A chunk written by a node through its stream writer."""
        if self.custom:
            self.sink(self.ns, "custom", chunk)

    def emit_message(self, payload: Any) -> None:
        """A chat model's `(message_chunk, metadata)` from a node (`messages` mode)."""
        if self.messages:
            self.sink(self.ns, "messages", payload)

    def emit_task_start(self, task: Task, triggers: tuple[str, ...]) -> None:
        """A task is about to run (`tasks` and `debug` modes)."""
        if not self.tasks:
            return
        payload = {"id": task.id, "name": task.name, "input": task.input, "triggers": triggers}
        self._task_event("task", task.step, payload)

    def emit_task_result(self, task: Task, result: Mapping[str, Any] | None) -> None:
        """A task finished, failed or paused (`tasks` and `debug` modes)."""
        if not self.tasks:
            return
        interrupts = [{"value": i.value, "id": i.id, "response_schema": i.response_schema}
                      for i in task.interrupts]
        payload = {"id": task.id, "name": task.name, "error": task.error, "result": result,
                   "interrupts": interrupts}
        self._task_event("task_result", task.step, payload)

    def _task_event(self, kind: str, step: int, payload: dict[str, Any]) -> None:
        if "tasks" in self.modes:
            self.sink(self.ns, "tasks", payload)
        if self.debug:
            self.sink(self.ns, "debug",
                      {"step": step, "timestamp": _now(), "type": kind, "payload": payload})

    def emit_checkpoint(self, payload: dict[str, Any], step: int) -> None:
        """A checkpoint was taken (`checkpoints` and `debug` modes)."""
        if "checkpoints" in self.modes:
            self.sink(self.ns, "checkpoints", payload)
        if self.debug:
            self.sink(self.ns, "debug",
                      {"step": step, "timestamp": _now(), "type": "checkpoint",
                       "payload": payload})

    def emit_lifecycle(self, event: dict[str, Any]) -> None:
        """A run lifecycle event (tether's `lifecycle` mode)."""
        if self.lifecycle:
            self.sink(self.ns, "lifecycle", event)


class CustomWriter:
    """The `custom` stream writer of one run: emits on the loop's thread, hands a chunk written
    from any other thread to the loop. One slotted object, not a closure (a run's worth of cells
    for the collector); it may be made on any thread."""

    __slots__ = ("_emit", "_loop")

    def __init__(self, emit: Callable[[Any], None], loop: asyncio.AbstractEventLoop) -> None:
        self._emit = emit
        self._loop = loop

    def __call__(self, chunk: Any) -> None:
        touch()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._emit(chunk)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._emit, chunk)


class LoopRelay:
    """Hands chunks made on worker threads to the loop's thread, in order, waking the loop
    once per batch rather than once per chunk (a sync node's model streams its tokens from a
    worker thread); chunks made on the loop's thread go straight through.

    Args:
        emit: what the loop's thread does with each chunk.
        loop: the run's event loop (its thread is the one calling this constructor).
        before: called in the sending thread before each chunk is sent.
    """

    __slots__ = ("_before", "_emit", "_loop", "_owner", "_pending", "_scheduled")

    def __init__(self, emit: Callable[[Any], None], loop: asyncio.AbstractEventLoop, *,
                 before: Callable[[], None] | None = None) -> None:
        self._before = before
        self._emit = emit
        self._loop = loop
        self._owner = threading.get_ident()
        self._pending: deque[Any] = deque()
        # Invariant: True from the moment a drain is scheduled until it starts; a chunk
        # appended after a drain started is either taken by it or schedules the next one.
        self._scheduled = False

    def __call__(self, chunk: Any) -> None:
        """Send `chunk` (from any thread)."""
        if self._before is not None:
            self._before()
        if threading.get_ident() == self._owner:
            self._emit(chunk)
            return
        self._pending.append(chunk)
        if not self._scheduled and not self._loop.is_closed():
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        pending, emit = self._pending, self._emit
        while pending:
            emit(pending.popleft())


def task_triggers(task: Task, triggers_of: Callable[[str], tuple[str, ...]]) -> tuple[str, ...]:
    """The trigger channels shown for a task in `debug`/`tasks` chunks."""
    if task.path[0] == PULL:
        return triggers_of(task.name)
    return (PUSH,)
