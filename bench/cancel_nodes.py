"""Nodes of the cancel family that must be importable by name: a process-isolated node is pickled
by reference and imported again in tether's worker process, so it lives at module level here, in
a module that imports nothing heavy (the worker starts with a fresh interpreter).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypedDict

_BURST = 10_000
"""Additions between two looks at the clock: a few hundred microseconds of pure Python."""


class SpinState(TypedDict):
    count: int
    flag: str
    """A file the node creates when it starts, so the benchmark knows it is running."""
    seconds: float
    """How long the node spins."""


def spin(state: SpinState) -> dict[str, Any]:
    """Burn CPU for `state["seconds"]`, deaf to cancellation.

    It never asks `tether.cancelled()`, and it swallows whatever a signal raises in it (tether's
    second rung, `NodeCancelled` from SIGTERM): the code a user cannot change, which only a kill
    stops. Creates `state["flag"]` first.
    """
    Path(state["flag"]).touch()
    until = time.monotonic() + state["seconds"]
    total = 0
    while time.monotonic() < until:
        try:
            for i in range(_BURST):
                total += i
        except BaseException:  # noqa: BLE001 - deliberately deaf: only a kill stops it
            continue
    return {"count": state["count"] + 1}
