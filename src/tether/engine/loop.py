"""The superstep loop: plan the due tasks, run them together, commit their writes at once,
checkpoint, repeat.

Invariants the loop keeps:
- A step's writes reach the channels only when every task of the step finished, in task-path
  order (`ChannelState.commit`). A step that does not complete leaves the channels as they were
  at its start; what its finished tasks wrote is kept as pending writes on that checkpoint.
- After the run's scope is cancelled the loop awaits nothing unshielded: it returns an outcome
  as soon as the running tasks have settled, and the caller finalises outside the scope.
- Every reason to stop the run that the loop finds itself (its recursion limit, a node's
  timeout in the run's own graph, a policy) goes to the run's cancel path (`RunHost.stop`)
  before the loop returns `cancelled`, exactly as a user's cancel does.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.channels.base import MISSING
from tether.checkpoint.base import StoredCheckpoint, WriteRecord
from tether.constants import INTERRUPT
from tether.engine import caching, closing, start, subgraph
from tether.engine.apply import group_writes
from tether.engine.execute import Executor
from tether.engine.interrupts import (
    attach_pending,
    kept_by_task,
    paused_before_marker,
    plan_input,
)
from tether.engine.options import LoopOptions
from tether.engine.outcome import LoopOutcome, LoopStatus, conclude, task_writes
from tether.engine.persist import Persistence
from tether.engine.report import announce_loaded, task_config
from tether.engine.spec import GraphSpec, Write
from tether.engine.state import ChannelState
from tether.engine.step import run_step
from tether.engine.stream import task_triggers
from tether.engine.task import StopMode, Task
from tether.errors import NodeTimeoutError
from tether.runtime import Runtime
from tether.types import CancelReason, Interrupt


@dataclass(frozen=True, slots=True)
class _FirstStep:
    """What the first superstep of a run that continues a thread is given: the writes its
    checkpoint kept, the new answers by task id, and whether it resumes an `interrupt_before`
    pause (a fresh start needs none of it: no object then)."""

    pending: Sequence[WriteRecord]
    resume_map: Mapping[str, list[Any]]
    skip_interrupt_before: bool


class Loop:
    """One run of a graph (or of a subgraph inside a task). It is also the `TaskHost` of its
    executor: what a running task asks of its graph run."""

    __slots__ = ("__weakref__", "_ran", "executor", "keeps_writes", "opts", "persist", "spec",
                 "state", "tasks")

    def __init__(self, spec: GraphSpec, options: LoopOptions) -> None:
        self.spec = spec
        self.opts = options
        self.state = ChannelState(spec)
        self.tasks: list[Task] = []
        self.persist: Persistence | None = None
        if options.store is not None and options.thread_id is not None:
            self.persist = Persistence(options.store, options.thread_id, options.ns,
                                       options.run_id, options.config.durability,
                                       emitter=options.emitter,
                                       metadata=options.config.raw.get("metadata"))
        self.keeps_writes = self.persist is not None
        config = options.config
        # The executor points back at its loop weakly: a loop and its executor leave no
        # reference cycle for the collector (runs start by the thousand).
        self.executor = Executor(
            scope=options.scope, emitter=options.emitter, pool=options.pool, nodes=spec.nodes,
            host=weakref.proxy(self), event_loop=_running_loop(),
            inline_sync=options.inline_sync, grace=config.cancel_grace, run_id=options.run_id,
            max_concurrency=config.max_concurrency, idle_timeout=config.idle_timeout,
            meter=options.host.meter, parent_interrupt=options.parent_interrupt,
            cache=options.cache, cache_policy=options.cache_policy, observer=options.observer,
        )
        # The tasks of the last step that committed (an empty tuple, shared, until one has).
        self._ran: Sequence[Task] = ()

    # -- the run --------------------------------------------------------------------------

    async def run(self, graph_input: Any) -> LoopOutcome:
        """Run from `graph_input` (values, `Command`, or None to continue) to an outcome.

        Cancellation:
            Under the run's scope: a cancel ends it with a `cancelled` outcome once the
            running tasks have settled (bounded by their graces); it never raises the cancel.
        """
        # The supersteps are this coroutine's own loop, and a step's tasks are awaited from
        # here: a run parked in a node holds no frame of a setup or a step helper (a thousand
        # runs in flight hold a thousand of each).
        first = await self._begin(graph_input)
        state = self.state
        stop = state.stop
        assert stop is not None  # set by `_begin`
        while True:
            tasks = self.tasks
            if state.step >= stop:
                # Checked before "nothing left to run", as LangGraph does: a run whose last
                # step is the last one its budget allows still ends over budget.
                return await self._over_budget()
            if not tasks:
                return self._outcome("done")
            held = await self._gate(tasks, first)
            if held is not None:
                return held
            first = None
            if self.opts.cache is not None:
                await caching.recall(self.opts.cache, [t for t in tasks if not t.cached])
            to_run = self._before_tasks(tasks)
            if len(to_run) == 1:
                await self.executor.run_attempts(to_run[0], alone=True)
            elif to_run:
                await run_step(self.executor, to_run)
            outcome = await self._after_tasks(tasks, to_run)
            if outcome is not None:
                return outcome
            if self._paused_after():
                return self._outcome("interrupted")

    def _paused_after(self) -> bool:
        """Whether an `interrupt_after` pause follows the step just committed (a helper of its
        own: a generator in `run` would make a closure cell for every run)."""
        after = self._pause_set(self.opts.interrupt_after, self.spec.interrupt_after)
        return bool(after) and bool(self.tasks) and any(t.name in after for t in self._ran)

    async def _begin(self, graph_input: Any) -> _FirstStep | None:
        """Load the thread, apply the input, plan the first step; what that step must be given
        (None: nothing, a fresh start)."""
        state, persist = self.state, self.persist
        # Nothing to load without a store (no coroutine made for it: every run starts here).
        loaded = None if persist is None else await start.load(state, persist,
                                                                 self.opts.config.checkpoint_id)
        plan = plan_input(self.spec, graph_input, loaded, self.opts.config)
        if plan.resume_writes and persist is not None:
            await persist.put_writes(plan.resume_writes)
        state.stop = budget_stop(loaded, self.opts.config.recursion_limit)
        if plan.null_resume:
            self.executor.null_resume = list(plan.null_resume)
        if plan.writes is not None:
            closer = self.opts.closer
            if closer is not None and loaded is not None and not self.opts.nested:
                await closing.close(closer, state, persist, self.opts.emitter, loaded)
            self.tasks = await start.input_step(state, persist, self.executor, graph_input,
                                                plan, loaded=loaded)
            # The view is made only for a consumer of `values` chunks (most started runs have
            # none): `emit_values` would drop it.
            if self.spec.start is not None and self.opts.emitter.values:
                self.opts.emitter.emit_values(state.view())
        else:
            if await start.replaying_older(persist, loaded, self.opts.config.checkpoint_id):
                await start.fork(state, persist)
            if plan.command_writes is not None or plan.goto:
                await start.apply_command(state, persist, self.executor.router, plan)
            state.refresh_all()
            self.tasks = state.plan(None)
            # Continuing a thread starts by showing where it stands, as LangGraph does.
            announce_loaded(self.opts.emitter, self.spec, loaded, state.shown(), state.step)
            self.opts.emitter.emit_values(state.view())
        pending = loaded.pending_writes if (loaded is not None and plan.writes is None) else ()
        if not pending and not plan.resume_map and not plan.skip_interrupt_before:
            return None
        return _FirstStep(pending, plan.resume_map, plan.skip_interrupt_before)

    async def _over_budget(self) -> LoopOutcome:
        """The recursion budget is spent: a subgraph's loop fails its parent task; the run's
        own loop stops the run through its cancel path."""
        if self.opts.nested:
            return self._outcome("limit")
        limit = self.opts.config.recursion_limit
        outcome = await self._stop(CancelReason(
            "budget", f"recursion_limit of {limit} supersteps reached", "recursion_limit",
            evidence={"limit": "recursion_limit", "value": limit, "step": self.state.step}))
        assert outcome is not None
        return outcome

    async def _gate(self, tasks: list[Task], first: _FirstStep | None) -> LoopOutcome | None:
        """What may keep the next superstep from starting: a cancel, an `interrupt_before`
        pause, or a policy. `first`: what the run's first step is given (its tasks then get
        it here)."""
        resuming_pause = self._identify(tasks, first)
        if self.opts.scope.cancel_called:
            return self._outcome("cancelled")
        before = self._pause_set(self.opts.interrupt_before, self.spec.interrupt_before)
        if before and not resuming_pause and any(t.name in before for t in tasks):
            if self.persist is not None:
                await self.persist.put_writes([paused_before_marker([t.name for t in tasks])])
            self.opts.emitter.emit_interrupts(())
            return self._outcome("interrupted")
        hooks = self.opts.host.hooks
        if hooks is None:
            return None
        fresh = tasks
        if first is not None:  # only a run's first step has tasks that do not run here yet:
            for task in tasks:  # those whose writes its checkpoint kept (`_identify`)
                if task.cached:
                    fresh = [t for t in tasks if not t.cached]
                    break
        state = self.state
        reason = hooks.before_step(state.step + 1, fresh, state)
        return None if reason is None else await self._stop(reason)

    def _identify(self, tasks: list[Task], first: _FirstStep | None) -> bool:
        """Give the step's tasks their ids (from the checkpoint they start from, where one is
        kept or shown) and, in the run's first step, what the thread kept for them; True when
        that step resumes an `interrupt_before` pause."""
        emitter = self.opts.emitter
        if self.persist is not None or emitter.tasks or emitter.messages:
            base = self.persist.checkpoint_id if self.persist is not None else None
            for task in tasks:
                task.key_id(base or "", self.opts.ns)
        if first is None:
            return False
        if first.pending or first.resume_map:
            attach_pending(tasks, first.pending, first.resume_map)
            self.executor.kept = kept_by_task(first.pending, first.resume_map)
        return first.skip_interrupt_before

    def _before_tasks(self, tasks: list[Task]) -> list[Task]:
        """Start a superstep whose cached results are recalled: barriers consumed, tasks
        announced; returns the tasks that must run. (Not a coroutine: most steps have no cache
        to await, and a coroutine per step is a frame to make and unwind.)"""
        consumed = self.state.consume(tasks)
        if self.persist is not None:
            self.persist.mark(consumed)
        self._announce_tasks(tasks)
        for task in tasks:
            if task.cached:
                return [t for t in tasks if not t.cached]
        return tasks

    async def _after_tasks(self, tasks: list[Task], ran: list[Task]) -> LoopOutcome | None:
        """End a superstep whose tasks `ran` (the others were cached): its outcome if the run
        stops here (a cancel, a failure, a pause, a policy), else None once it is committed."""
        if self.opts.scope.cancel_called:
            return self._outcome("cancelled")
        cache = self.opts.cache
        if cache is not None:
            await caching.keep(cache, ran)
        if self.opts.emitter.tasks:
            self._announce_results(ran)
        unfinished = await self._unfinished(tasks)
        if unfinished is not None:
            return unfinished
        hooks = self.opts.host.hooks
        state = self.state
        if hooks is not None:
            verdict = hooks.before_commit(state.step + 1, tasks, state.values)
            if verdict is not None:
                return await self._stop(_vetoed(tasks, verdict))
        self._ran = tasks
        if hooks is None or not hooks.watches_progress:  # only the no-progress detector asks
            await self._commit(tasks, False)  # after a commit
            return None
        progressed = await self._commit(tasks, True)
        reason = hooks.after_commit(state.step, progressed, state.values)
        return None if reason is None else await self._stop(reason)

    def _announce_results(self, tasks: list[Task]) -> None:
        emitter = self.opts.emitter
        for task in tasks:
            emitter.emit_task_result(task, task.state_update() or {})

    def _announce_tasks(self, tasks: list[Task]) -> None:
        emitter = self.opts.emitter
        for task in tasks:
            if emitter.tasks:
                emitter.emit_task_start(task, task_triggers(task, self.state.triggers_of))
            if task.cached:
                emitter.emit_update(task, task.state_update())

    async def _unfinished(self, tasks: list[Task]) -> LoopOutcome | None:
        """The outcome of a step that cannot commit: a task failed, or one paused for input."""
        failed = next((t for t in tasks if t.outcome == "error"), None)
        if failed is not None:
            error = failed.error
            if isinstance(error, NodeTimeoutError) and not self.opts.nested:
                # A node of the run's own graph overran its timeout: the run times out.
                return await self._stop(CancelReason(
                    "timeout", str(error), f"node:{error.node}",
                    evidence={"node": error.node, "timeout": error.timeout}), error)
            return self._outcome("error", error=error,
                                 error_node=failed.failed_node or failed.name)
        if not any(t.outcome == "interrupted" for t in tasks):
            return None
        interrupts = tuple(i for t in tasks for i in t.interrupts)
        emitter = self.opts.emitter
        emitter.emit_interrupts(interrupts)
        outcome = self._outcome("interrupted", interrupts=interrupts)
        if emitter.values:
            shown = self.state.view(outcome.values)
            emitter.emit_values({**shown, INTERRUPT: interrupts} if isinstance(shown, dict)
                                else {INTERRUPT: interrupts})
        return outcome

    async def _stop(self, reason: CancelReason | None,
                    error: BaseException | None = None) -> LoopOutcome | None:
        """Stop the run for `reason` through the run's cancel path (None: go on)."""
        if reason is None:
            return None
        await self.opts.host.stop(reason)
        return self._outcome("cancelled", error=error)

    async def _commit(self, tasks: list[Task], watch: bool) -> bool:
        """Apply the step's writes; whether they changed a state value (`watch`: a hook
        watches progress; else nothing is compared, and the answer is False)."""
        state = self.state
        grouped = group_writes(tasks)
        # The state before the step, for the no-progress detector (a copy made in C: the
        # commit updates `state.values` in place).
        before = state.values.copy() if watch else None
        updated = state.commit(grouped)
        self.executor.kept = None
        self.tasks = state.plan(updated)
        if self.persist is not None:
            # With no task due, the run ends here: its end's transaction stores this checkpoint
            # (a subgraph's end is its parent's step, which does not).
            await self.persist.take(state, "loop", updated, self.tasks, ran=self._ran,
                                    last=not self.tasks and not self.opts.nested)
        if self.opts.emitter.values and not state.state_keys.isdisjoint(updated):
            self.opts.emitter.emit_values(state.view())
        if not self.opts.nested and self.opts.host.consumer_waiting():
            # Let a waiting consumer see this step before the next one runs.
            await asyncio.sleep(0)
        if before is None:
            return False
        # Whether a written state key has another value than before (a write of an equal value
        # is no progress; values that cannot be compared count as changed; a written channel
        # that is no state key is in neither): inline, as every step of a run with the default
        # no-progress detector asks.
        values = state.values
        if self.spec.compares_whole:
            # Only written keys can differ, and a key nobody wrote keeps the very same value
            # (which equality takes as equal without comparing): the states compare in C.
            try:
                return before != values
            except Exception:  # noqa: BLE001 - values that cannot be compared count as changed
                return True
        for key in grouped:
            old, new = before.get(key, MISSING), values.get(key, MISSING)
            if new is old:
                continue
            try:
                if old != new:
                    return True
            except Exception:  # noqa: BLE001 - values that cannot be compared count as changed
                return True
        return False

    def _pause_set(self, override: frozenset[str] | None,
                   default: frozenset[str]) -> frozenset[str]:
        chosen = override if override is not None else default
        if "*" in chosen:
            return frozenset(self.spec.nodes)
        return chosen

    # -- what its tasks ask of it (TaskHost) ----------------------------------------------

    def preview(self, writes: Sequence[Write]) -> dict[str, Any]:
        """The state with only `writes` applied (what a conditional edge sees)."""
        return self.state.preview(writes)

    def make_runtime(self) -> Runtime[Any]:
        """A `Runtime` for this graph run's nodes: its context, long-term store and ids."""
        opts = self.opts
        return Runtime(context=opts.context, store=opts.long_term_store, run_id=opts.run_id,
                       thread_id=opts.thread_id)

    def task_config(self, task: Task) -> dict[str, Any]:
        """The config dict `task`'s node sees."""
        opts = self.opts
        return task_config(opts.config.raw, opts.thread_id, opts.ns,
                           task_triggers(task, self.state.triggers_of), task)

    async def task_done(self, task: Task) -> None:
        """A task of a multi-task step finished: keep its writes even if the step never
        completes (a crash, a cancel, a sibling's error or interrupt).

        Cancellation:
            One store transaction; cancelled before it commits, the task runs again
            on resume.
        """
        if self.persist is not None and not self.opts.scope.cancel_called:
            await self.persist.put_writes(task_writes(task))

    async def task_failed(self, task: Task, error: BaseException) -> None:
        """An attempt failed: the run's policies may stop the run for it.

        Cancellation:
            As `RunHost.stop`.
        """
        hooks = self.opts.host.hooks
        if hooks is not None:
            reason = hooks.task_failed(task, error)
            if reason is not None:
                await self.opts.host.stop(reason)

    def node_stopped(self, task: Task, how: StopMode) -> None:
        """A node stopped after the run's cancel."""
        self.opts.host.node_stopped(task, how)

    async def run_subgraph(self, task: Task, handler: Callable[[Any], Any]) -> Any:
        """Run a compiled-graph node's subgraph in a child loop; its output is the result.

        Cancellation:
            The child's tasks are children of `task`'s scope: cancelling the run stops them
            with the same ladder, and this call then raises `CancelledError`.
        """
        spec = task.node.subgraph
        assert spec is not None
        return await self.run_graph(task, spec, task.input, handler)

    async def run_graph(self, task: Task, spec: GraphSpec, graph_input: Any,
                        handler: Callable[[Any], Any], *, index: int | None = None) -> Any:
        """Run `spec` in a child loop under `task`: its node's subgraph (`index` None: the
        output cut to this graph's keys), or the `index`-th graph its code invokes (the whole
        output). With a checkpointer the child checkpoints in its own namespace and, when the
        task runs again, continues from there.

        Cancellation:
            As `run_subgraph`.
        """
        durable = self.persist is not None
        opts = subgraph.child_options(self.opts, task, handler, durable=durable,
                                      index=index or 0)
        child = Loop(spec, opts)
        outcome = await child.run(None if await subgraph.resumes(opts) else graph_input)
        if durable:
            await subgraph.keep(opts, outcome)
        # The answers its models were cut short in are the task's too: a run's partial
        # answers are found in its own final checkpoint, whatever graph streamed them.
        cut = [p for t in outcome.tasks for p in t.partials or ()]
        if cut:
            task.partials = [*(task.partials or ()), *cut]
        keys = self.state.state_keys if index is None else None
        return subgraph.result(outcome, keys, task, self.opts.config.recursion_limit)

    # -- the end --------------------------------------------------------------------------

    def cancelled_outcome(self) -> LoopOutcome:
        """The outcome to report when a cancel stopped the loop outside its own checks."""
        return self._outcome("cancelled")

    def _outcome(self, status: LoopStatus, *, error: BaseException | None = None,
                 interrupts: tuple[Interrupt, ...] = (),
                 error_node: str | None = None) -> LoopOutcome:
        return conclude(status, self.state, self.tasks, self.persist,
                        self.opts.scope.cancelled_at, error=error, interrupts=interrupts,
                        error_node=error_node)




def _vetoed(tasks: list[Task], verdict: CancelReason) -> CancelReason:
    """A policy vetoed the step's writes: they are never applied, nor kept (the tasks run
    again on resume)."""
    for task in tasks:
        task.outcome, task.writes = "cancelled", None
    return verdict


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop; None outside one (the executor then finds it on first use)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def budget_stop(loaded: StoredCheckpoint | None, recursion_limit: int) -> int:
    """The first superstep a run may not take, as LangGraph counts: the run's first step is
    the one after its thread's checkpoint (-1 on a new thread) and the budget allows
    `recursion_limit + 1` more. With fresh input the first of those is the input's own step,
    so `recursion_limit` steps run nodes; a run that continues a thread gets them all, and one
    more (its first step runs nodes too)."""
    first = loaded.step + 1 if loaded is not None else -1
    return first + recursion_limit + 1


__all__ = ["Loop"]
