"""Scale-out: workers that claim queued runs from Postgres and drive them (`Worker`), and the
server's launcher that queues runs for them (`QueueLauncher`). Needs the `postgres` extra.

The names are loaded on first use, so `tether.worker.command` (the `tether worker` options)
imports without psycopg installed and can say which extra is missing."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.worker.launcher import QueueLauncher
    from tether.worker.options import WorkerOptions
    from tether.worker.worker import Worker

_HOMES = {"QueueLauncher": "tether.worker.launcher", "WorkerOptions": "tether.worker.options",
          "Worker": "tether.worker.worker"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tether.worker' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = ["QueueLauncher", "Worker", "WorkerOptions"]
