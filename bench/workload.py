"""What a workload is: the protocol the harness runs, and the common kind that times one graph.

A family module (`engine.py`, `persistence.py`, ...) exposes `WORKLOADS`, a list of objects
following `Workload`; `registry.py` finds them, so a new family is one new file.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bench.libs import Lib, SaverKind
from bench.timing import Measurement, Plan, Stopwatch

Mode = Literal["sync", "async"]
MODES: tuple[Mode, ...] = ("sync", "async")
GOAL = 0.20
"""DESIGN.md §7: tether's time is at most one fifth of LangGraph's."""

State = Mapping[str, Any]
Update = dict[str, Any]
NodeFn = Callable[[State], Update]


class Workload(Protocol):
    """One row of the table: measured once per library, the results compared."""

    @property
    def name(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def doc(self) -> str: ...
    @property
    def unit(self) -> str:
        """What `Measurement.per` counts (the table shows time per unit)."""
        ...

    @property
    def goal(self) -> float:
        """The best acceptable ratio tether / LangGraph."""
        ...

    def measure(self, lib: Lib, plan: Plan) -> Measurement:
        """Build, warm up and time the workload on `lib`; any exception becomes an error row."""
        ...


def row_id(workload: Workload) -> str:
    return f"{workload.name}:{workload.mode}"


@dataclass(frozen=True)
class Env:
    """What a graph builder gets: the library, the mode, the size, and a checkpointer or `None`."""

    lib: Lib
    mode: Mode
    size: int
    checkpointer: Any

    def node(self, fn: NodeFn) -> Callable[[State], Any]:
        """`fn` itself in sync mode, an `async def` around it in async mode (no thread hop)."""
        if self.mode == "sync":
            return fn

        async def run(state: State) -> Update:
            return fn(state)

        run.__name__ = run.__qualname__ = fn.__name__
        return run


@dataclass(frozen=True)
class Case:
    """A compiled graph ready to run, with its input and the supersteps one run takes.

    `steps` counts the supersteps that run nodes; LangGraph's extra first step, which only
    writes the input, is not counted.
    """

    graph: Any
    input: dict[str, Any]
    steps: int


Builder = Callable[[Env], Case]


@dataclass(frozen=True)
class GraphWorkload:
    """Times `invoke` (or `ainvoke`) of one graph; reports time per superstep.

    Each repeat starts from the same input; with a checkpointer each repeat uses a fresh
    `thread_id`, so no run continues another's thread.
    """

    name: str
    family: str
    mode: Mode
    doc: str
    build: Builder
    size: int
    quick_size: int
    saver: SaverKind | None = None
    unit: str = "step"
    goal: float = GOAL

    def measure(self, lib: Lib, plan: Plan) -> Measurement:
        size = self.quick_size if plan.quick else self.size
        path = plan.tmpdir / f"{lib.name}-{self.name}-{self.mode}.sqlite"
        if self.mode == "async":
            return asyncio.run(self._ameasure(lib, plan, size, path))
        with lib.saver(self.saver, path) as checkpointer:
            case = self.build(Env(lib, self.mode, size, checkpointer))
            watch, result = Stopwatch(plan), None
            for i in watch.indices():
                with watch.lap():
                    result = case.graph.invoke(case.input, self._config(case, i))
            return watch.measurement(case.steps, result)

    async def _ameasure(self, lib: Lib, plan: Plan, size: int, path: Any) -> Measurement:
        async with lib.asaver(self.saver, path) as checkpointer:
            case = self.build(Env(lib, self.mode, size, checkpointer))
            watch, result = Stopwatch(plan), None
            for i in watch.indices():
                with watch.lap():
                    result = await case.graph.ainvoke(case.input, self._config(case, i))
            return watch.measurement(case.steps, result)

    def _config(self, case: Case, index: int) -> dict[str, Any]:
        # Both libraries count supersteps against recursion_limit; leave a margin.
        config: dict[str, Any] = {"recursion_limit": case.steps + 10}
        if self.saver is not None:
            config["configurable"] = {"thread_id": f"{self.name}-{index}"}
        return config


def both_modes(**fields: Any) -> list[GraphWorkload]:
    """The same graph workload once with `invoke` and once with `ainvoke`.

    `doc` defaults to the docstring of `build`.
    """
    fields.setdefault("doc", inspect.getdoc(fields["build"]) or "")
    return [GraphWorkload(mode=mode, **fields) for mode in MODES]
