"""Node functions for process isolation: module-level, so that a child process can import them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import tether


def _started(state: dict[str, Any]) -> None:
    marker = state.get("marker")
    if marker:
        Path(marker).write_text("started")


def busy_loop(state: dict[str, Any]) -> dict[str, int]:
    """Never checks for a cancel: only killing the process stops it."""
    _started(state)
    x = 0
    while True:
        x += 1


def cooperative_sleeper(state: dict[str, Any]) -> dict[str, int]:
    """Checks `cancelled()` between short sleeps."""
    _started(state)
    while not tether.cancelled():
        time.sleep(0.005)
    return {"count": -1}


def sleeper(state: dict[str, Any]) -> dict[str, int]:
    """Returns quickly."""
    time.sleep(0.01)
    return {"count": state["count"] + 1}
