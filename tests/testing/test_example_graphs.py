"""The cancel sweep over the graphs of examples/: each program's definitions are loaded (not
its demonstration), its sleeps made instant, and its graph compiled with a checkpointer."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint.memory import InMemorySaver
from tether.testing import cancel_sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SWEPT: dict[str, dict[str, Any]] = {
    "readme_cancel.py": {"count": 0},
    "cancel_stream.py": {"count": 0},
    "cancel_from_thread.py": {"chapter": 0},
}
"""Example → the input of its graph."""

NOT_SWEPT = {
    "sync_timeout.py": "its node crawls until it is cancelled: no reference run ever ends",
    "process_kill.py": "its node loops forever in a process: no reference run ever ends",
}

# Where an example's demonstration starts: everything before is its graph's definition.
_PROGRAM = re.compile(r"^(graph = |async def main|asyncio\.run|with |if __name__|started = )")


async def _instant(_seconds: float, *args: Any, **kwargs: Any) -> None:
    await asyncio.sleep(0)


def builder_of(name: str) -> Any:
    """The `builder` an example defines, its nodes' sleeps made instant (still cancel points)."""
    lines = (EXAMPLES / name).read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if _PROGRAM.match(line))
    namespace: dict[str, Any] = {"__name__": f"example_{name[:-3]}"}
    exec(compile("\n".join(lines[:end]), str(EXAMPLES / name), "exec"), namespace)
    for module in ("asyncio", "tether"):
        if module in namespace:
            real = namespace[module]
            names = {k: getattr(real, k) for k in dir(real) if not k.startswith("__")}
            namespace[module] = types.SimpleNamespace(**{**names, "sleep": _instant})
    return namespace["builder"]


def test_every_example_is_swept_or_says_why_not() -> None:
    assert set(SWEPT) | set(NOT_SWEPT) == {p.name for p in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize("name", sorted(SWEPT))
def test_an_example_graph_keeps_every_invariant_when_cancelled(name: str) -> None:
    graph = builder_of(name).compile(checkpointer=InMemorySaver())
    result = cancel_sweep(graph, SWEPT[name])
    assert result.ok and len(result.tried) == len(result.points) >= 12
