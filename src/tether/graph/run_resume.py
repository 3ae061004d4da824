"""Which checkpoint `graph.resume(run_id)` continues from, and why it may refuse."""

from __future__ import annotations

from typing import Any, Protocol

from tether.checkpoint.base import CheckpointStore
from tether.config import merge_configs
from tether.errors import CheckpointerRequired, InvalidResumeError, RunNotFound
from tether.types import RunStatus


class Resumable(Protocol):
    """A graph whose runs can be resumed (a `CompiledStateGraph`)."""

    @property
    def checkpointer(self) -> CheckpointStore | None:
        """Where its runs' checkpoints are kept."""

RESUMABLE = frozenset({RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.ERROR})


def resume_config(graph: Resumable, run_id: str,
                  config: dict[str, Any] | None) -> dict[str, Any]:
    """The config of a run that continues `run_id` from its final checkpoint.

    Raises:
        CheckpointerRequired: the graph has no checkpointer, so nothing was kept.
        RunNotFound: no such run.
        InvalidResumeError: the run succeeded, is still going, or left no checkpoint.
    """
    if graph.checkpointer is None:
        raise CheckpointerRequired("resume()")
    info = graph.checkpointer.get_run(run_id)
    if info is None:
        raise RunNotFound(run_id)
    if info.status not in RESUMABLE:
        hint = (" (answer its interrupt with Command(resume=...))"
                if info.status is RunStatus.INTERRUPTED else "")
        raise InvalidResumeError(
            f"run {run_id!r} is {info.status.value}; only cancelled, timed-out or failed runs "
            f"can be resumed{hint}"
        )
    if info.checkpoint_id is None or info.thread_id is None:
        raise InvalidResumeError(f"run {run_id!r} ended before its first checkpoint")
    base = {"configurable": {"thread_id": info.thread_id, "checkpoint_id": info.checkpoint_id}}
    return merge_configs(base, config)
