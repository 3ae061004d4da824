"""The superstep loop: plan the due tasks, run them together, commit their writes at once,
checkpoint, repeat.

Invariants the loop keeps:
- A step's writes reach the channels only when every task of the step finished, in task-path
  order, in `apply_grouped`. A step that does not complete leaves the channels as they were at
  its start; what its finished tasks wrote is kept as pending writes on that checkpoint.
- After the run's scope is cancelled the loop awaits nothing unshielded: it returns an outcome
  as soon as the running tasks have settled, and the caller finalises outside the scope.
- `self.step` is the step of the last checkpoint taken (taken in memory when there is no store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.cancel.scope import CancelScope
from tether.channels.base import MISSING, BaseChannel
from tether.checkpoint.base import CheckpointStore, StoredCheckpoint
from tether.config import RunConfig
from tether.constants import INTERRUPT, START, TASKS
from tether.engine.apply import apply_grouped, group_writes, preview, refresh_values
from tether.engine.execute import Executor
from tether.engine.hooks import StepHooks
from tether.engine.outcome import LoopOutcome, task_writes
from tether.engine.persist import Persistence
from tether.engine.plan import consume_triggers, plan_tasks
from tether.engine.report import announce_loaded, checkpoint_payload, task_config
from tether.engine.resume import InputPlan, attach_pending, plan_input
from tether.engine.spec import GraphSpec, Write
from tether.engine.start import LoopStart
from tether.engine.stream import Emitter, task_triggers
from tether.engine.task import Task
from tether.engine.threads import WorkerPool
from tether.node_context import Meter
from tether.runtime import Runtime
from tether.types import CancelReason, Interrupt


@dataclass(slots=True)
class LoopOptions:
    """How one loop run is set up (the runs layer fills this in)."""

    config: RunConfig
    scope: CancelScope
    emitter: Emitter
    pool: WorkerPool
    store: CheckpointStore | None = None
    thread_id: str | None = None
    ns: str = ""
    run_id: str | None = None
    inline_sync: bool = False
    context: Any = None
    interrupt_before: frozenset[str] | None = None
    interrupt_after: frozenset[str] | None = None
    parent_interrupt: Any = None
    on_stop: Any = None
    subgraphs: bool = False
    yield_to_consumer: Callable[[], bool] | None = None
    hooks: StepHooks | None = None
    stop: Callable[[CancelReason], Any] | None = None
    meter: Meter | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Loop(LoopStart):
    """One run of a graph (or of a subgraph inside a task)."""

    def __init__(self, spec: GraphSpec, options: LoopOptions) -> None:
        self.spec = spec
        self.opts = options
        self.channels: dict[str, BaseChannel] = {k: f() for k, f in spec.channels.items()}
        self.values: dict[str, Any] = {}
        self.state_keys = frozenset(spec.state_keys)
        self.step = -1
        self.live: set[str] = set()
        self.tasks: list[Task] = []
        self.loaded: StoredCheckpoint | None = None
        self.persist: Persistence | None = None
        if options.store is not None and options.thread_id is not None:
            self.persist = Persistence(options.store, options.thread_id, options.ns,
                                       options.run_id, options.config.durability)
        self._runtime = Runtime(context=options.context, run_id=options.run_id,
                                thread_id=options.thread_id)
        self.executor = Executor(
            scope=options.scope, emitter=options.emitter, pool=options.pool, nodes=spec.nodes,
            inline_sync=options.inline_sync, grace=options.config.cancel_grace,
            preview=self._preview, make_config=lambda task: task_config(self, task),
            runtime=lambda _task: self._runtime, run_id=options.run_id,
            max_concurrency=options.config.max_concurrency, on_stop=options.on_stop,
            on_done=self._task_done if self.persist is not None else None,
            run_subgraph=self._run_subgraph, parent_interrupt=options.parent_interrupt,
            on_failure=self._task_failed if options.hooks is not None else None,
            idle_timeout=options.config.idle_timeout, meter=options.meter,
        )
        self._ran: list[Task] = []
        self._node_triggers: dict[str, tuple[str, ...]] = {}
        for channel, nodes in spec.triggers.items():
            for name in nodes:
                self._node_triggers[name] = (*self._node_triggers.get(name, ()), channel)

    # -- the run --------------------------------------------------------------------------

    async def run(self, graph_input: Any) -> LoopOutcome:
        """Run from `graph_input` (values, `Command`, or None to continue) to an outcome."""
        await self._load()
        plan = plan_input(self.spec, graph_input, self.loaded, self.opts.config)
        if plan.resume_writes and self.persist is not None:
            await self.persist.put_writes(plan.resume_writes)
        if plan.writes is not None:
            tasks = await self._input_step(graph_input, plan)
            stop = self.step - 1 + self.opts.config.recursion_limit
        else:
            if await self._replaying_older():
                await self._fork()
            if plan.command_writes is not None or plan.goto:
                await self._apply_command(plan)
            self._refresh_all()
            tasks = self._plan(None)
            stop = self.step + self.opts.config.recursion_limit
            # Continuing a thread starts by showing where it stands, as LangGraph does.
            announce_loaded(self)
            self.opts.emitter.emit_values(self._values())
        return await self._supersteps(tasks, plan, stop)

    async def _supersteps(self, tasks: list[Task], plan: InputPlan, stop: int) -> LoopOutcome:
        first = True
        pending = self.loaded.pending_writes if (self.loaded and plan.writes is None) else ()
        while True:
            if not tasks:
                return self._outcome("done")
            for task in tasks:
                if task.id_key is None and not task._id:
                    self._assign_id(task)
            if first and (pending or plan.resume_map):
                attach_pending(tasks, pending, plan.resume_map)
            held = await self._gate(tasks, stop, first and plan.skip_interrupt_before)
            if held is not None:
                return held
            first = False
            outcome = await self._superstep(tasks)
            if outcome is not None:
                return outcome
            tasks = self.tasks
            after = self._pause_set(self.opts.interrupt_after, self.spec.interrupt_after)
            if after and tasks and any(t.name in after for t in self._ran):
                return self._outcome("interrupted")

    async def _gate(self, tasks: list[Task], stop: int,
                    resuming_pause: bool) -> LoopOutcome | None:
        """What may keep the next superstep from starting: a cancel, the recursion budget, an
        `interrupt_before` pause, or a policy."""
        if self.opts.scope.cancel_called:
            self.tasks = tasks
            return self._outcome("cancelled")
        if self.step >= stop:
            self.tasks = tasks
            return self._outcome("limit")
        before = self._pause_set(self.opts.interrupt_before, self.spec.interrupt_before)
        if before and not resuming_pause and any(t.name in before for t in tasks):
            await self._mark_paused_before(tasks)
            return self._outcome("interrupted")
        hooks = self.opts.hooks
        if hooks is None:
            return None
        fresh = [t for t in tasks if not t.cached]
        return self._policy(hooks.before_step(self.step + 1, fresh, self.values), tasks)

    async def _superstep(self, tasks: list[Task]) -> LoopOutcome | None:
        consumed = consume_triggers(self.spec, self.channels, tasks)
        if self.persist is not None:
            self.persist.mark(consumed)
        self._announce_tasks(tasks)
        emitter = self.opts.emitter
        self.tasks = tasks
        to_run = [t for t in tasks if not t.cached]
        if to_run:
            await self.executor.run_step(to_run)
        if self.opts.scope.cancel_called:
            return self._outcome("cancelled")
        if emitter.tasks:
            for task in to_run:
                emitter.emit_task_result(task, _result_of(task))
        unfinished = self._unfinished(tasks)
        if unfinished is not None:
            return unfinished
        hooks = self.opts.hooks
        if hooks is not None:
            verdict = hooks.before_commit(self.step + 1, tasks, self.values)
            if verdict is not None:
                # Vetoed writes are never applied, nor kept: the tasks run again on resume.
                for task in tasks:
                    task.outcome, task.writes = "cancelled", None
                return self._policy(verdict, tasks)
        self._ran = tasks
        changed = await self._commit(tasks)
        if hooks is not None:
            return self._policy(hooks.after_commit(self.step, changed, self.values), self.tasks)
        return None

    def _announce_tasks(self, tasks: list[Task]) -> None:
        emitter = self.opts.emitter
        for task in tasks:
            if emitter.tasks:
                emitter.emit_task_start(task, task_triggers(task, self._node_triggers))
            if task.cached:
                emitter.emit_update(task, task.state_update())

    def _unfinished(self, tasks: list[Task]) -> LoopOutcome | None:
        """The outcome of a step that cannot commit: a task failed, or one paused for input."""
        failed = next((t for t in tasks if t.outcome == "error"), None)
        if failed is not None:
            return self._outcome("error", error=failed.error)
        if not any(t.outcome == "interrupted" for t in tasks):
            return None
        interrupts = tuple(i for t in tasks for i in t.interrupts)
        emitter = self.opts.emitter
        emitter.emit_interrupts(interrupts)
        outcome = self._outcome("interrupted", interrupts=interrupts)
        if emitter.values:
            shown = self.spec.values(outcome.values) or {}
            emitter.emit_values({**shown, INTERRUPT: interrupts})
        return outcome

    def _policy(self, reason: CancelReason | None, tasks: list[Task]) -> LoopOutcome | None:
        """Stop the run for a policy's reason, through the run's cancel path."""
        if reason is None:
            return None
        stop = self.opts.stop
        if stop is not None:
            stop(reason)
        else:
            self.opts.scope.cancel(reason)
        self.tasks = tasks
        return self._outcome("cancelled")

    async def _commit(self, tasks: list[Task]) -> frozenset[str]:
        grouped = group_writes(tasks)
        before = {k: self.values.get(k, MISSING) for k in grouped if k in self.state_keys} \
            if self.opts.hooks is not None else {}
        updated = apply_grouped(self.channels, grouped, self.live)
        self.step += 1
        refresh_values(self.channels, self.values, self.state_keys, updated)
        triggers = self.spec.triggers
        self.live = {c for c in updated if (c in triggers or c == TASKS)
                     and self.channels[c].is_available()}
        self.tasks = self._plan(updated)
        await self._checkpoint("loop", updated)
        if not self.state_keys.isdisjoint(updated):
            self.opts.emitter.emit_values(self._values())
        should_yield = self.opts.yield_to_consumer
        if should_yield is not None and should_yield():
            # Let a waiting consumer see this step before the next one runs.
            await asyncio.sleep(0)
        return frozenset(k for k, old in before.items()
                         if _differs(old, self.values.get(k, MISSING)))

    # -- helpers --------------------------------------------------------------------------

    def _plan(self, candidates: Any) -> list[Task]:
        return plan_tasks(self.spec, self.channels, self.values, self.step + 1, candidates)

    def _refresh_all(self) -> None:
        refresh_values(self.channels, self.values, self.state_keys, self.state_keys)

    def _preview(self, writes: list[Write]) -> dict[str, Any]:
        return preview(self.channels, self.values, self.state_keys, writes)

    def _output(self) -> Any:
        return self.spec.output(self.values)

    def _values(self) -> Any:
        return self.spec.values(self.values)

    def _pause_set(self, override: frozenset[str] | None,
                   default: frozenset[str]) -> frozenset[str]:
        chosen = override if override is not None else default
        if "*" in chosen:
            return frozenset(self.spec.nodes)
        return chosen

    def _assign_id(self, task: Task) -> None:
        if self.persist is not None or self.opts.emitter.tasks:
            base = self.persist.checkpoint_id if self.persist is not None else ""
            task.id_key = (base or "", self.opts.ns, task.step)

    def _metadata(self, source: str) -> dict[str, Any]:
        meta: dict[str, Any] = dict(self.opts.config.raw.get("metadata") or {})
        meta.update({"source": source, "step": self.step, "parents": {}})
        if source == "loop" and self._ran:
            meta["tasks"] = sorted({t.name for t in self._ran})
        if self.opts.run_id is not None:
            meta["run_id"] = self.opts.run_id
        meta.update(self.opts.metadata)
        return meta

    async def _checkpoint(self, source: str, updated: set[str],
                          names: tuple[str, ...] | None = None) -> None:
        persist = self.persist
        if persist is None:
            return
        persist.mark(updated)
        if names is None:
            names = tuple(t.name for t in self.tasks)
        metadata = self._metadata(source)
        record = await persist.checkpoint(self.channels, self.step, source, names, metadata)
        emitter = self.opts.emitter
        if emitter.checkpoints:
            shown = [(t.name, ()) for t in self.tasks] if names != (START,) else [(START, ())]
            payload = checkpoint_payload(self, record.id, record.parent_id, names=names,
                                         metadata=metadata, tasks=shown)
            emitter.emit_checkpoint(payload, self.step)

    def _task_failed(self, task: Task, error: BaseException) -> None:
        hooks = self.opts.hooks
        if hooks is not None:
            reason = hooks.task_failed(task, error)
            if reason is not None:
                stop = self.opts.stop
                if stop is not None:
                    stop(reason)
                else:
                    self.opts.scope.cancel(reason)

    async def _task_done(self, task: Task) -> None:
        # A task of a multi-task step finished: keep its writes even if the step never
        # completes (a crash, a cancel, a sibling's error or interrupt).
        if self.persist is not None and not self.opts.scope.cancel_called:
            await self.persist.put_writes(task_writes(task))

    async def _run_subgraph(self, task: Task, handler: Any) -> Any:
        from tether.engine.subgraph import run_subgraph

        return await run_subgraph(self, task, handler)

    def cancelled_outcome(self) -> LoopOutcome:
        """The outcome to report when a cancel stopped the loop outside its own checks."""
        return self._outcome("cancelled")

    def _outcome(self, status: Any, *, error: BaseException | None = None,
                 interrupts: tuple[Interrupt, ...] = ()) -> LoopOutcome:
        tasks = self.tasks if status != "done" else []
        unfinished = status in ("cancelled", "error", "interrupted")
        values = self.values
        if status == "interrupted" and tasks:
            done = [t for t in tasks if t.outcome == "done"]
            if done:
                values = preview(self.channels, self.values, self.state_keys,
                                 [w for t in sorted(done, key=lambda t: t.sort_key)
                                  for w in t.writes or ()])
        writes = tuple(w for t in tasks for w in task_writes(t)) if unfinished else ()
        if status == "cancelled":
            for task in tasks:
                if task.outcome == "done" and task.finished_at is not None and (
                    self.opts.scope.cancelled_at is not None
                    and task.finished_at >= self.opts.scope.cancelled_at
                ):
                    task.outcome, task.writes = "cancelled", None
            writes = tuple(w for t in tasks for w in task_writes(t))
        output = self.spec.output(values)
        return LoopOutcome(
            status=status, values=dict(values), output=output, step=self.step,
            checkpoint_id=self.persist.checkpoint_id if self.persist is not None else None,
            interrupts=interrupts, error=error, tasks=list(tasks), final_writes=writes,
            unsaved=self.persist.unsaved() if self.persist is not None else (),
            next=tuple(t.name for t in tasks),
        )


def _differs(old: Any, new: Any) -> bool:
    """Whether a state value really changed (a write of an equal value is no progress)."""
    if old is new:
        return False
    try:
        return bool(old != new)
    except Exception:  # noqa: BLE001 - values that cannot be compared count as changed
        return True


def _result_of(task: Task) -> Mapping[str, Any]:
    return task.state_update() or {}
