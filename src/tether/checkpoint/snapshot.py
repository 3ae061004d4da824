"""What a run's record and its last checkpoint say about where it stopped (`RunSnapshot`), and
which of a checkpoint's channels and pending writes are the engine's own: pure functions over
what a store has read, shared by every backend's `load`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.constants import CANCELLED, CONTROL_WRITES, NULL_TASK_ID, PARTIAL, RETURN
from tether.types import PendingWrite, RunInfo, RunSnapshot

if TYPE_CHECKING:  # the records only, for their types: base.py imports this module
    from tether.checkpoint.base import StoredCheckpoint, WriteRecord


def snapshot(info: RunInfo, checkpoint: StoredCheckpoint | None) -> RunSnapshot:
    """The state the run `info` ended or paused in, given its last checkpoint (None: it wrote
    none, or it is gone)."""
    if checkpoint is None:
        return RunSnapshot(info.run_id, {}, (), -1, info.status, info.reason,
                           info.checkpoint_id, (), ())
    writes = checkpoint.pending_writes
    cancelled = tuple(sorted({w.task_name for w in writes if w.channel == CANCELLED}))
    done = {w.task_id for w in writes if w.channel not in CONTROL_WRITES
            and w.channel != RETURN and w.task_id != NULL_TASK_ID}
    done_names = {w.task_name for w in writes if w.task_id in done}
    # What finished: the writes of the step's finished tasks, and the results of the calls
    # (tasks of the Functional API, tool calls) that finished inside unfinished ones.
    pending = tuple(
        PendingWrite(w.task_name, w.channel, w.value)
        for w in writes
        if (w.task_id in done and not is_internal(w.channel)) or w.channel == RETURN
    )
    nxt = tuple(n for n in checkpoint.next if n not in done_names or n in cancelled)
    values = {k: v for k, v in checkpoint.values.items() if not is_internal(k)}
    return RunSnapshot(info.run_id, values, nxt, checkpoint.step, info.status, info.reason,
                       checkpoint.id, cancelled, pending, partial_answers(writes))


def partial_answers(writes: Sequence[WriteRecord]) -> tuple[dict[str, Any], ...]:
    """The partial answers among a checkpoint's pending writes: task by task, each task's in
    the order its model calls began (their indexes count down)."""
    kept = [w for w in writes if w.channel == PARTIAL and isinstance(w.value, Mapping)]
    first = {w.task_id: i for i, w in reversed(list(enumerate(kept)))}
    return tuple(dict(w.value) for w in sorted(kept, key=lambda w: (first[w.task_id], -w.idx)))


def is_internal(key: str) -> bool:
    """Whether a channel is the engine's (a trigger, a barrier, a control write), not state."""
    return key.startswith(("branch:", "join:", "__"))


__all__ = ["is_internal", "partial_answers", "snapshot"]
