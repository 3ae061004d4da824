"""How a loop run begins: loading the thread's checkpoint, the input step, a `Command` applied
to a paused thread, and the fork made when an older checkpoint is replayed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tether.channels.base import BaseChannel
from tether.checkpoint.base import StoredCheckpoint, WriteRecord
from tether.constants import END, NULL_TASK_ID, START, TASKS
from tether.engine.apply import apply_grouped, group_writes, refresh_values
from tether.engine.resume import InputPlan, paused_before_marker
from tether.engine.spec import GraphSpec, Write
from tether.engine.task import PULL, Task
from tether.errors import CheckpointNotFound

if TYPE_CHECKING:
    from tether.engine.execute import Executor
    from tether.engine.loop import LoopOptions
    from tether.engine.persist import Persistence


class LoopStart:
    """The beginning of a loop run (a part of `Loop`)."""

    spec: GraphSpec
    opts: LoopOptions
    channels: dict[str, BaseChannel]
    values: dict[str, Any]
    state_keys: frozenset[str]
    step: int
    live: set[str]
    tasks: list[Task]
    loaded: StoredCheckpoint | None
    persist: Persistence | None
    executor: Executor

    if TYPE_CHECKING:
        async def _checkpoint(self, source: str, updated: set[str],
                              names: tuple[str, ...] | None = None) -> None: ...
        def _plan(self, candidates: Any) -> list[Task]: ...
        def _preview(self, writes: list[Write]) -> dict[str, Any]: ...
        def _refresh_all(self) -> None: ...
        def _values(self) -> Any: ...

    def _triggers_in(self, channels: Iterable[str]) -> set[str]:
        """The trigger channels among `channels` that hold a value now."""
        triggers = self.spec.triggers
        return {c for c in channels
                if (c in triggers or c == TASKS) and self.channels[c].is_available()}

    async def _load(self) -> None:
        persist = self.persist
        if persist is None:
            return
        opts = self.opts
        assert opts.store is not None and opts.thread_id is not None
        stored = await opts.store.aget_checkpoint(opts.thread_id, opts.ns,
                                                  opts.config.checkpoint_id)
        if stored is None:
            if opts.config.checkpoint_id is not None:
                raise CheckpointNotFound(
                    f"thread {opts.thread_id!r} has no checkpoint {opts.config.checkpoint_id!r}"
                )
            return
        for key, value in stored.values.items():
            channel = self.channels.get(key)
            if channel is not None:
                channel.restore(value)
        self.step = stored.step
        self.loaded = stored
        persist.restore(stored)
        null = [w for w in stored.pending_writes if w.task_id == NULL_TASK_ID]
        if null:
            # Writes given from outside (a Command) belong to this checkpoint's state.
            grouped: dict[str, list[Any]] = {}
            for w in sorted(null, key=lambda w: w.idx):
                grouped.setdefault(w.channel, []).append(w.value)
            persist.mark(apply_grouped(self.channels, grouped, ()))
        self.live = self._triggers_in(self.channels)

    async def _input_step(self, graph_input: Any, plan: InputPlan) -> list[Task]:
        self.step = self.loaded.step + 1 if self.loaded is not None else -1
        self._refresh_all()
        self.live = self._triggers_in(self.channels)
        if self.persist is not None:
            start_channel = self.channels.get(START)
            if start_channel is not None and start_channel.update([graph_input]):
                self.persist.mark((START,))
                self.live.add(START)
            await self._checkpoint("input", set(), (START,))
        writes: list[Write] = list(plan.writes or ())
        start = self.spec.start
        writes.extend(start.edges)
        if start.branches:
            state = self._preview(writes)
            for branch in start.branches:
                writes.extend(await self.executor.router.branch_writes(branch, state, START))
        writes.extend(self.executor.router.goto_write(t, START) for t in plan.goto if t != END)
        start_task = Task(start, graph_input, (PULL, START), self.step, outcome="done",
                          writes=writes)
        updated = apply_grouped(self.channels, group_writes([start_task]), self.live)
        self.step += 1
        refresh_values(self.channels, self.values, self.state_keys, updated)
        self.live = self._triggers_in(updated)
        tasks = self._plan(updated)
        self.tasks = tasks
        await self._checkpoint("loop", updated)
        self.opts.emitter.emit_values(self._values())
        return tasks

    async def _replaying_older(self) -> bool:
        """True when the run continues from a checkpoint that is not its thread's latest."""
        opts = self.opts
        if self.loaded is None or opts.config.checkpoint_id is None or opts.store is None:
            return False
        assert opts.thread_id is not None
        latest = await opts.store.aget_checkpoint(opts.thread_id, opts.ns)
        return latest is not None and latest.id != self.loaded.id

    async def _fork(self) -> None:
        """Replaying an older checkpoint starts a new branch of history from a copy of it."""
        self.step += 1
        self.tasks = self._plan(None)
        await self._checkpoint("fork", set())
        self.tasks = []

    async def _apply_command(self, plan: InputPlan) -> None:
        """A `Command(update=..., goto=...)` for a thread that has a checkpoint: its writes are
        applied at once (and kept on the checkpoint), then the pending tasks run."""
        writes: list[Write] = list(plan.command_writes or ())
        writes.extend(self.executor.router.goto_write(t, START) for t in plan.goto if t != END)
        if self.persist is not None:
            await self.persist.put_writes(
                [WriteRecord(NULL_TASK_ID, "__input__", i, ch, v)
                 for i, (ch, v) in enumerate(writes)]
            )
        grouped: dict[str, list[Any]] = {}
        for channel, value in writes:
            grouped.setdefault(channel, []).append(value)
        updated = apply_grouped(self.channels, grouped, ())
        if self.persist is not None:
            self.persist.mark(updated)
        refresh_values(self.channels, self.values, self.state_keys, updated)
        self.live |= self._triggers_in(updated)

    async def _mark_paused_before(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        if self.persist is not None:
            await self.persist.put_writes([paused_before_marker([t.name for t in tasks])])
        self.opts.emitter.emit_interrupts(())
