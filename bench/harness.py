"""Runs each workload on both libraries, checks they agree, and reports: a table and JSON.

A failure on either side (an import, an exception, a timeout, a different result) becomes an
error row and the run goes on; slowness is never an error.
"""

from __future__ import annotations

import json
import platform
import sys
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bench.compare import differences
from bench.libs import LIBRARIES, Lib, LibName, load
from bench.timing import Outcome, Plan, one_line
from bench.workload import Workload, row_id


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    m = outcome.measurement
    return {
        "median_s": m.median if m else None,
        "per_unit_s": m.per_unit if m else None,
        "seconds": m.seconds if m else None,
        "peak_rss_delta_kib": m.peak_rss_kib if m else None,
        "error": outcome.error,
        "traceback": outcome.trace,
    }


@dataclass
class Row:
    """One workload measured on both libraries."""

    workload: Workload
    sides: dict[LibName, Outcome]
    mismatch: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int | None:
        per = [s.measurement.per for s in self.sides.values() if s.measurement]
        return per[0] if per else None

    @property
    def ratio(self) -> float | None:
        ours, theirs = self.sides["tether"].measurement, self.sides["langgraph"].measurement
        if ours is None or theirs is None or theirs.per_unit == 0:
            return None
        return ours.per_unit / theirs.per_unit

    @property
    def meets_goal(self) -> bool | None:
        ratio = self.ratio
        return None if ratio is None else ratio <= self.workload.goal

    @property
    def errors(self) -> list[str]:
        """Every problem in this row, one line each, naming the side."""
        found = [f"{lib}: {side.error}" for lib, side in self.sides.items() if side.error]
        if self.mismatch:
            found.append("results differ: " + "; ".join(self.mismatch))
        return found

    def to_json(self) -> dict[str, Any]:
        w = self.workload
        return {
            "id": row_id(w),
            "workload": w.name,
            "family": w.family,
            "mode": w.mode,
            "doc": w.doc,
            "unit": w.unit,
            "per": self.steps,
            "goal": w.goal,
            "ratio": self.ratio,
            "meets_goal": self.meets_goal,
            "mismatch": self.mismatch,
            "errors": self.errors,
            **{lib: _outcome_json(side) for lib, side in self.sides.items()},
        }


def load_libraries() -> dict[LibName, Lib | str]:
    """Each library, or the error its import raised."""
    libs: dict[LibName, Lib | str] = {}
    for name in LIBRARIES:
        try:
            libs[name] = load(name)
        except Exception as exc:  # noqa: BLE001 - any import failure becomes an error row
            libs[name] = one_line(exc)
    return libs


def run_row(workload: Workload, libs: dict[LibName, Lib | str], plan: Plan) -> Row:
    """Measure `workload` on every library that imported, then compare their results."""
    loaded = [lib for lib in libs.values() if not isinstance(lib, str)]
    try:
        outcomes = workload.measure(loaded, plan)
    except Exception as exc:  # noqa: BLE001 - the workload's own failure: no library has a number
        failure = Outcome(error=one_line(exc), trace=traceback.format_exc())
        outcomes = {lib.name: failure for lib in loaded}
    sides: dict[LibName, Outcome] = {
        name: Outcome(error=f"import failed: {lib}") if isinstance(lib, str) else outcomes[name]
        for name, lib in libs.items()
    }
    row = Row(workload, sides)
    ours, theirs = sides["tether"].measurement, sides["langgraph"].measurement
    if ours is not None and theirs is not None:
        row.mismatch = differences(ours.result, theirs.result)
    return row


# --- the table -------------------------------------------------------------------------------

_COLUMNS = (
    ("workload", 20),
    ("mode", 5),
    ("steps", 5),
    ("tether", 15),
    ("LangGraph", 15),
    ("ratio", 6),
    ("goal", 4),
)


class Table:
    """Prints rows as they finish, then the notes that explain the error rows."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.notes: dict[str, int] = {}

    def header(self, libs: dict[LibName, Lib | str], plan: Plan, goals: set[float]) -> None:
        for name, lib in libs.items():
            about = lib if isinstance(lib, str) else f"{lib.version} from {lib.origin}"
            self._print(f"{name}: {about}")
        warmup = f"{plan.warmup} warm-up" + ("s" if plan.warmup != 1 else "")
        quick = ", quick sizes" if plan.quick else ""
        goal = f"{goals.pop():.2f}" if len(goals) == 1 else "the workload's goal"
        if plan.sqlite_synchronous:
            quick += f", SQLite synchronous={plan.sqlite_synchronous.upper()} for both"
        self._print(
            f"python {platform.python_version()}; median of {plan.repeat} after {warmup}{quick}; "
            f"goal ✓: tether/LangGraph <= {goal} (DESIGN.md §7)\n"
        )
        self._print(self._cells([title for title, _ in _COLUMNS] + ["note"]))
        self._print(self._cells(["-" * width for _, width in _COLUMNS] + ["----"]))

    def row(self, row: Row) -> None:
        w = row.workload
        ratio, meets = row.ratio, row.meets_goal
        mark = "" if meets is None else ("✓" if meets else "✗")
        cells = [
            w.name,
            w.mode,
            "" if row.steps is None else str(row.steps),
            self._side(row.sides["tether"], w.unit),
            self._side(row.sides["langgraph"], w.unit),
            "" if ratio is None else f"{ratio:.2f}",
            mark,
            " ".join(f"[{self._note(error)}]" for error in row.errors),
        ]
        self._print(self._cells(cells).rstrip())

    def footer(self, rows: list[Row]) -> None:
        if self.notes:
            self._print("")
        for text, number in self.notes.items():
            self._print(f"[{number}] {text}")
        met = sum(1 for row in rows if row.meets_goal)
        failed = sum(1 for row in rows if row.errors)
        self._print(f"\n{len(rows)} rows: {met} meet the goal, {failed} with errors")

    def _side(self, side: Outcome, unit: str) -> str:
        if side.measurement is None:
            return "error"
        return f"{_duration(side.measurement.per_unit)}/{unit}"

    def _note(self, text: str) -> int:
        return self.notes.setdefault(text, len(self.notes) + 1)

    def _cells(self, cells: list[str]) -> str:
        widths = [width for _, width in _COLUMNS] + [0]
        return "  ".join(
            cell.rjust(width) if i >= 2 and width else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


# --- running everything ------------------------------------------------------------------------


@dataclass
class Report:
    """A whole run: what was loaded, how it was measured, and the rows."""

    libs: dict[LibName, Lib | str]
    plan: Plan
    rows: list[Row]

    @property
    def failed(self) -> bool:
        return any(row.errors for row in self.rows)

    @property
    def timed_out(self) -> bool:
        """Whether a timeout may have left threads of a library running."""
        return any(side.timed_out for row in self.rows for side in row.sides.values())

    def to_json(self, argv: list[str]) -> dict[str, Any]:
        return {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": argv,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "plan": {
                "repeat": self.plan.repeat,
                "warmup": self.plan.warmup,
                "quick": self.plan.quick,
                "timeout": self.plan.timeout,
                "sqlite_synchronous": self.plan.sqlite_synchronous,
            },
            "libraries": {name: _about(lib) for name, lib in self.libs.items()},
            "rows": [row.to_json() for row in self.rows],
        }


def _about(lib: Lib | str) -> dict[str, str]:
    return (
        {"error": lib} if isinstance(lib, str) else {"version": lib.version, "origin": lib.origin}
    )


def run(workloads: list[Workload], plan: Plan, out: TextIO = sys.stdout) -> Report:
    """Measure every workload on both libraries, printing the table as rows finish."""
    report = Report(load_libraries(), plan, [])
    table = Table(out)
    table.header(report.libs, plan, {workload.goal for workload in workloads})
    for workload in workloads:
        row = run_row(workload, report.libs, plan)
        table.row(row)
        report.rows.append(row)
    table.footer(report.rows)
    return report


def write_json(path: Path, report: Report, argv: list[str]) -> None:
    """Write the run (environment, plan, every row with its raw times) as JSON."""
    text = json.dumps(report.to_json(argv), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
