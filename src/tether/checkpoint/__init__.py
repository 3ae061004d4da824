"""Stores: the protocol every backend implements, its records, and the serializer."""

from tether.checkpoint.base import (
    CheckpointRecord,
    CheckpointStore,
    FinishResult,
    RunFinish,
    StoredCheckpoint,
    ThreadRecord,
    WriteRecord,
)
from tether.checkpoint.serde import Serializer, UnresolvedValue


def run_ledger(max_finished_runs: int = 10_000) -> CheckpointStore:
    """An in-memory store for the run records of a graph compiled without a checkpointer.

    It remembers the last `max_finished_runs` finished runs, so that `get_run`, `wait` and
    `cancel` work by id within the process; nothing survives it.
    """
    from tether.checkpoint.memory import InMemorySaver

    store = InMemorySaver(max_finished_runs=max_finished_runs)
    store.ephemeral = True
    return store


__all__ = [
    "CheckpointRecord",
    "CheckpointStore",
    "FinishResult",
    "RunFinish",
    "Serializer",
    "StoredCheckpoint",
    "ThreadRecord",
    "UnresolvedValue",
    "WriteRecord",
    "run_ledger",
]
