"""Finds the workloads: every module of this package that has a `WORKLOADS` list is a family.

Adding a family is adding one module with `WORKLOADS` (and optionally `ORDER`, the place of its
rows in the table; lower comes first).
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import bench
from bench.libs import Lib
from bench.timing import Outcome, Plan
from bench.workload import GOAL, Workload, row_id

_DEFAULT_ORDER = 100


@dataclass(frozen=True)
class BrokenFamily:
    """Stands in for a family module that failed to import, so the run reports it and goes on."""

    name: str
    error: str
    family: str = "broken"
    mode: str = "-"
    doc: str = "a workload module that failed to import"
    unit: str = "step"
    goal: float = GOAL

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        raise ImportError(self.error)


def discover() -> list[Workload]:
    """All workloads of all families, families by `ORDER`, each family's rows in its own order."""
    families: list[tuple[int, str, list[Workload]]] = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_"):
            continue
        try:
            module: ModuleType = importlib.import_module(f"bench.{info.name}")
        except Exception as exc:  # noqa: BLE001 - a broken family is a row, not a crash
            error = f"{type(exc).__name__}: {exc}"
            families.append((0, info.name, [BrokenFamily(info.name, error)]))
            continue
        workloads = getattr(module, "WORKLOADS", None)
        if workloads is not None:
            order = getattr(module, "ORDER", _DEFAULT_ORDER)
            families.append((order, info.name, list(workloads)))
    families.sort(key=lambda family: family[:2])
    return [workload for _, _, workloads in families for workload in workloads]


def select(workloads: list[Workload], patterns: list[str]) -> list[Workload]:
    """Keep the workloads that any pattern names: a family, a workload, `name:mode`, or a glob.

    Raises `LookupError` for a pattern that matches nothing (a typo should not pass silently).
    """
    if not patterns:
        return workloads
    unmatched = [p for p in patterns if not any(_matches(w, p) for w in workloads)]
    if unmatched:
        raise LookupError(f"no workload matches {', '.join(unmatched)}")
    return [w for w in workloads if any(_matches(w, p) for p in patterns)]


def _matches(workload: Workload, pattern: str) -> bool:
    names = (workload.family, workload.name, row_id(workload))
    return pattern in names or any(fnmatch.fnmatchcase(name, pattern) for name in names)
