"""The engine's side of checkpointing: building records, honouring durability modes, and
remembering what is stored and what is not yet.

A checkpoint stores only the channels that changed since its parent; every channel's value is
referenced by the id of the checkpoint that stored it. A channel written again with the value
`None` that its referenced checkpoint already stores (a conditional edge's trigger channel, set
at every step) keeps that reference: there is nothing new to store. With durability `async` or
`exit`, records wait here until they are written, and the last one absorbs the values of the
ones never written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tether.channels.base import MISSING, BaseChannel
from tether.checkpoint.base import CheckpointRecord, CheckpointStore, StoredCheckpoint, WriteRecord
from tether.checkpoint.ids import uuid7
from tether.constants import START
from tether.engine.report import checkpoint_payload
from tether.engine.state import ChannelState
from tether.engine.stream import Emitter
from tether.engine.task import Task
from tether.types import Durability


class Persistence:
    """Checkpoint bookkeeping for one run of one graph namespace.

    Args:
        store: where checkpoints go.
        thread_id: the thread written to.
        ns: the checkpoint namespace ("" for the root graph).
        run_id: the run writing.
        durability: `sync` (written before the next step), `async` (written in the background)
            or `exit` (only the last one, at the end).
        emitter: where `checkpoints`/`debug` chunks of the checkpoints taken go.
        metadata: the run's config metadata, the base of every checkpoint's metadata.
    """

    def __init__(self, store: CheckpointStore, thread_id: str, ns: str, run_id: str | None,
                 durability: Durability, *, emitter: Emitter,
                 metadata: Mapping[str, Any] | None = None) -> None:
        self.store = store
        self.thread_id = thread_id
        self.ns = ns
        self.run_id = run_id
        self.durability = durability
        self.emitter = emitter
        self.metadata = dict(metadata or {})
        self.refs: dict[str, str] = {}
        # Channels whose referenced checkpoint stored `None` (written by this run).
        self._stored_none: set[str] = set()
        self.dirty: set[str] = set()
        self.checkpoint_id: str | None = None
        self.parent_id: str | None = None
        self.written: set[str] = set()
        # Records not yet stored, oldest first (durability async/exit; with `sync`, a held
        # one until the next is stored, and the last one).
        self._unsaved: list[CheckpointRecord] = []
        self._writer: asyncio.Task[None] | None = None

    def restore(self, stored: StoredCheckpoint) -> None:
        """Continue from a stored checkpoint."""
        self.refs = dict(stored.refs)
        self._stored_none.clear()
        self.checkpoint_id = stored.id
        self.written.add(stored.id)
        self.dirty.clear()

    def mark(self, channels: Iterable[str]) -> None:
        """Note channels whose value changed since the last checkpoint."""
        self.dirty.update(channels)

    async def checkpoint(self, channels: Mapping[str, BaseChannel], step: int, source: str,
                         nxt: Sequence[str], metadata: dict[str, Any], *,
                         last: bool = False, hold: bool = False) -> CheckpointRecord:
        """Take a checkpoint of `channels` and store it per the durability mode.

        `last`: no step follows it: with durability `sync` it is kept for the run's final
        transaction (`unsaved`), which commits it with the run's end, one transaction instead
        of two. "Stored before the next step starts" still holds: there is none.

        `hold`: another checkpoint follows it before anything runs (the input checkpoint,
        before the first step's): with durability `sync` it waits here and is stored with
        that one, in its transaction (a run's start then waits for one commit, not two).
        "Stored before the next step starts" still holds: both are.

        Cancellation:
            With durability `sync`, one store transaction: cancelled before it
            commits, the checkpoint is not stored (the run's end stores what is left,
            a held one included).
        """
        new_id = uuid7()
        blobs: dict[str, Any] = {}
        refs = self.refs
        stored_none = self._stored_none
        for key in self.dirty:
            value = channels[key].checkpoint()
            if value is None:
                if key not in stored_none or key not in refs:
                    blobs[key] = None
                    refs[key] = new_id
                    stored_none.add(key)
            elif value is MISSING:
                refs.pop(key, None)
                stored_none.discard(key)
            else:
                blobs[key] = value
                refs[key] = new_id
                stored_none.discard(key)
        self.dirty.clear()
        record = CheckpointRecord(
            thread_id=self.thread_id, ns=self.ns, id=new_id, parent_id=self.checkpoint_id,
            step=step, source=source, refs=dict(refs), blobs=blobs, next=tuple(nxt),
            metadata=metadata, run_id=self.run_id,
        )
        self.parent_id, self.checkpoint_id = self.checkpoint_id, new_id
        if self.durability == "sync" and not (last or hold):
            held = self._unsaved  # (with `sync`, only a held checkpoint waits there)
            if held:
                records = (*held, record)
                await self.store.aput_checkpoints(records)
                self.written.update(r.id for r in records)
                held.clear()
            else:
                await self.store.aput_checkpoint(record)
                self.written.add(new_id)
        else:
            self._unsaved.append(record)
            if self.durability == "async":
                self._kick_writer()
        return record

    async def take(self, state: ChannelState, source: str, updated: Iterable[str],
                   next_tasks: Sequence[Task], *, ran: Sequence[Task] = (),
                   names: tuple[str, ...] | None = None, last: bool = False,
                   hold: bool = False) -> CheckpointRecord:
        """Take a checkpoint of `state` after a change to the channels `updated`, store it per
        the durability mode, and show it to `checkpoints`/`debug` streams.

        Args:
            next_tasks: the tasks due from it.
            ran: the tasks of the step it concludes (named in its metadata).
            names: the names recorded as due, when not those of `next_tasks` (the input
                checkpoint records `__start__`).
            last: the run ends after it (see `checkpoint`).
            hold: stored with the next checkpoint, taken before anything runs (see
                `checkpoint`).

        Cancellation:
            As `checkpoint`.
        """
        self.mark(updated)
        if names is None:
            names = tuple(t.name for t in next_tasks)
        metadata = dict(self.metadata)
        metadata.update({"source": source, "step": state.step, "parents": {}})
        if source == "loop" and ran:
            metadata["tasks"] = sorted({t.name for t in ran})
        if self.run_id is not None:
            metadata["run_id"] = self.run_id
        record = await self.checkpoint(state.channels, state.step, source, names, metadata,
                                       last=last, hold=hold)
        if self.emitter.checkpoints:
            shown = [(t.name, ()) for t in next_tasks] if names != (START,) else [(START, ())]
            payload = checkpoint_payload(self.thread_id, self.ns, state.shown(), record.id,
                                         record.parent_id, names=names, metadata=metadata,
                                         tasks=shown)
            self.emitter.emit_checkpoint(payload, state.step)
        return record

    def _kick_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._unsaved:
            record = self._unsaved[0]
            await self.store.aput_checkpoint(record)
            self.written.add(record.id)
            self._unsaved.pop(0)

    async def flush(self) -> None:
        """Wait until background writes (durability `async`) are done.

        Cancellation:
            Only the waiting stops; the background writer goes on.
        """
        if self._writer is not None and not self._writer.done():
            await self._writer

    def unsaved(self) -> tuple[CheckpointRecord, ...]:
        """Records still to be written, for the run's final transaction.

        With durability `exit` only the last record is kept; it takes over the values of the
        dropped ones so that nothing it references is missing.
        """
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        records = [r for r in self._unsaved if r.id not in self.written]
        self._unsaved.clear()
        if not records:
            return ()
        if self.durability != "exit" or len(records) == 1:
            return tuple(records)
        last = records[-1]
        merged: dict[str, Any] = {}
        for record in records:
            merged.update(record.blobs)
        blobs = {k: v for k, v in merged.items() if last.refs.get(k) in {r.id for r in records}}
        refs = {k: (last.id if k in blobs else ref) for k, ref in last.refs.items()}
        parent = records[0].parent_id
        return (replace(last, blobs=blobs, refs=refs, parent_id=parent),)

    async def put_writes(self, writes: Sequence[WriteRecord]) -> None:
        """Store pending writes against the current checkpoint, now (durability `sync`).

        Cancellation:
            One store transaction; safe to retry.
        """
        if self.checkpoint_id is None or not writes or self.durability != "sync":
            return
        await self.store.aput_writes(self.thread_id, self.ns, self.checkpoint_id, writes)

    def is_stored(self, checkpoint_id: str | None) -> bool:
        """Whether a checkpoint has reached the store."""
        return checkpoint_id is not None and checkpoint_id in self.written
