"""Closing a thread that a stopped run left open, before a new input is applied to it.

The engine does not know what "open" means (a chat's unanswered tool calls): a `Closer`
given by the graph layer looks at the thread's checkpoint and answers with the writes that
close it. They are applied to the channels at the checkpoint's step, before the input, so
the input checkpoint holds them and the new run's first node sees a closed thread. They are
streamed as the `updates` chunk of the pseudo-node `__repair__`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tether.checkpoint.base import StoredCheckpoint
from tether.engine.persist import Persistence
from tether.engine.state import ChannelState
from tether.engine.stream import Emitter

REPAIR_NODE = "__repair__"
"""The name the closing writes are shown under (`updates` chunks, the run's audit log)."""


@dataclass(frozen=True, slots=True)
class Closing:
    """The writes that close a thread, and what to say about them.

    Attributes:
        writes: values per channel, applied with the channels' reducers.
        detail: a JSON-ready description for the run's audit log.
    """

    writes: Mapping[str, list[Any]]
    detail: dict[str, Any] = field(default_factory=dict)


class Closer(Protocol):
    """Decides whether a thread's checkpoint is left open (by the graph layer)."""

    async def __call__(self, loaded: StoredCheckpoint,
                       values: Mapping[str, Any]) -> Closing | None:
        """The writes that close the thread at `loaded` (whose channel `values` are given),
        or None when nothing is open.

        Cancellation:
            Only reads (the run's record): safe to cancel and to repeat.
        """


async def close(closer: Closer, state: ChannelState, persist: Persistence | None,
                emitter: Emitter, loaded: StoredCheckpoint) -> Closing | None:
    """Ask `closer` about the loaded checkpoint and apply its writes (kept by the input
    checkpoint that follows); what was applied, or None.

    Cancellation:
        Nothing is stored here: cancelled before the input checkpoint, the thread is as it was.
    """
    state.refresh_all()
    closing = await closer(loaded, state.values)
    if closing is None or not closing.writes:
        return None
    updated = state.put({k: list(v) for k, v in closing.writes.items()})
    if persist is not None:
        persist.mark(updated)
    if emitter.updates:
        # Shown as a node's update: one value per key (a key written once shows its write).
        shown = {k: v[0] if len(v) == 1 else list(v) for k, v in closing.writes.items()}
        emitter.sink(emitter.ns, "updates", {REPAIR_NODE: shown})
    return closing


__all__ = ["REPAIR_NODE", "Closer", "Closing", "close"]
