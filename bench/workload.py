"""What a workload is: the protocol the harness runs, and the common kind that times one graph.

A family module (`engine.py`, `persistence.py`, ...) exposes `WORKLOADS`, a list of objects
following `Workload`; `registry.py` finds them, so a new family is one new file.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from bench.libs import Lib, SaverKind
from bench.timing import Contest, Outcome, Plan, within

Mode = Literal["sync", "async"]
MODES: tuple[Mode, ...] = ("sync", "async")
_LOOP_GRACE = 5.0
"""Seconds past `--timeout` before a signal interrupts an event loop that a run blocks."""
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

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        """Build, warm up and time the workload on each library (see `Contest`).

        Returns an outcome for every library, keyed by name; an exception that escapes is
        taken as every library's error.
        """
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
    """Times `invoke` (or `ainvoke`) of one graph on each library; reports time per superstep.

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

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        contest = Contest(plan, [lib.name for lib in libs])
        if self.mode == "async":
            cases = asyncio.run(self._arun(libs, plan, contest))
        else:
            cases = self._run(libs, plan, contest)
        return contest.outcomes({name: case.steps for name, case in cases.items()})

    def _run(self, libs: Sequence[Lib], plan: Plan, contest: Contest) -> dict[str, Case]:
        cases: dict[str, Case] = {}
        with ExitStack() as stack:
            for lib in libs:
                stack.enter_context(contest.guard(lib.name))  # an error closing the saver
                with contest.guard(lib.name):
                    path = self._path(plan, lib)
                    opened = lib.saver(self.saver, path, plan.sqlite_synchronous)
                    saver = stack.enter_context(opened)
                    cases[lib.name] = self.build(self._env(lib, plan, saver))
            for index, name in contest.turns():
                case = cases[name]
                with contest.lap(name):
                    contest.results[name] = case.graph.invoke(case.input, self._config(case, index))
        return cases

    async def _arun(self, libs: Sequence[Lib], plan: Plan, contest: Contest) -> dict[str, Case]:
        cases: dict[str, Case] = {}
        async with AsyncExitStack() as stack:
            for lib in libs:
                stack.enter_context(contest.guard(lib.name))
                with contest.guard(lib.name):
                    path = self._path(plan, lib)
                    opened = lib.asaver(self.saver, path, plan.sqlite_synchronous)
                    saver = await stack.enter_async_context(opened)
                    cases[lib.name] = self.build(self._env(lib, plan, saver))
            for index, name in contest.turns():
                case = cases[name]
                with contest.lap(name, grace=_LOOP_GRACE):
                    run = case.graph.ainvoke(case.input, self._config(case, index))
                    contest.results[name] = await within(run, plan.timeout)
        return cases

    def _env(self, lib: Lib, plan: Plan, saver: Any) -> Env:
        return Env(lib, self.mode, self.quick_size if plan.quick else self.size, saver)

    def _path(self, plan: Plan, lib: Lib) -> Path:
        return plan.tmpdir / f"{lib.name}-{self.name}-{self.mode}.sqlite"

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
