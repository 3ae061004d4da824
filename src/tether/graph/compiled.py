"""`CompiledStateGraph`: a compiled graph. It runs, streams and inspects; the work itself is
delegated to `tether.runs` (runs and their control) and `tether.engine` (state and history)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

from tether import node_context
from tether.checkpoint import CheckpointStore, run_ledger
from tether.checkpoint.ids import uuid7
from tether.checkpoint.json_fit import problem
from tether.config import RunConfig, merge_configs, parse_config
from tether.engine.calls import current_site
from tether.engine.to_thread import default_pool
from tether.errors import ConfigError
from tether.graph.batching import GraphBatches
from tether.graph.history import GraphHistory
from tether.graph.observer import has_langchain, holds_conversation, observer_for
from tether.graph.repair import ThreadCloser, messages_key
from tether.graph.runnable_parts import RunnableParts
from tether.graph.stream_parts import PartsFormat, coercing
from tether.runs import control, portal
from tether.runs.handle import Run
from tether.runs.policies import PolicyDefaults
from tether.runs.request import RunRequest, StreamFormat
from tether.store.base import BaseStore
from tether.types import CancelReason, GraphOutput, RunInfo, RunStatus

_VALUES = "values"


class CompiledStateGraph(GraphHistory, GraphBatches, RunnableParts):
    """A runnable graph, as `StateGraph.compile()` returns it.

    Attributes:
        builder: the `StateGraph` it was compiled from.
        checkpointer: its store for checkpoints, or None.
        store: its long-term store (`runtime.store` in its nodes), or None — LangGraph's
            meaning of the name.
        ledger: where its runs are recorded (`ledger.load(run_id)`, `ledger.events(run_id)`):
            the checkpointer itself, or, without one, an in-memory ledger of this process.
        spec: what the engine runs.
        cache: where nodes and tasks with a `CachePolicy` keep results (`compile(cache=)`).
        cache_policy: the policy of tasks that have none (an entrypoint's).
        repair_after_stop: a new input on a thread whose last run stopped first closes the
            conversation it left open (`tether.graph.repair`); on for a state with an
            `add_messages` channel, unless `compile(repair_after_stop=False)`.
    """

    def __init__(self, builder: Any, *, checkpointer: Any, store: Any,
                 interrupt_before: tuple[str, ...], interrupt_after: tuple[str, ...],
                 name: str, config: dict[str, Any] | None = None,
                 strict: bool = False, cache: Any = None, cache_policy: Any = None,
                 repair_after_stop: bool = True) -> None:
        if checkpointer in (True, False):
            checkpointer = None
        if checkpointer is not None and not isinstance(checkpointer, CheckpointStore):
            raise TypeError(
                f"checkpointer must be a tether store (InMemorySaver, SqliteSaver...), "
                f"not {type(checkpointer).__module__}.{type(checkpointer).__name__}"
            )
        self.builder = builder
        self.checkpointer: CheckpointStore | None = checkpointer
        self.ledger: CheckpointStore = checkpointer or run_ledger()
        self.store: BaseStore | None = _long_term_store(store)
        self.cache = cache
        self.cache_policy = cache_policy
        self.name = name
        self.interrupt_before_nodes = interrupt_before
        self.interrupt_after_nodes = interrupt_after
        self.strict = strict
        self.spec = builder.compile_spec(interrupt_before, interrupt_after, name, strict=strict)
        self.nodes = dict(builder.nodes)
        self.stream_mode = "updates"
        self.config = config or {}
        self.pool = default_pool()
        self.policy_defaults = PolicyDefaults()
        # The graph's own config parsed, for the runs given none of their own: (the config it
        # was parsed from, the result, their metadata). Keyed by identity, as `with_config`
        # copies this dict. Shared by those runs: nothing changes them (the runs layer copies).
        self._bare: tuple[dict[str, Any], RunConfig, dict[str, Any]] | None = None
        # The v1 stream formats made so far, by (modes, single, subgraphs): never changed.
        self._formats: dict[tuple[tuple[str, ...], bool, bool], StreamFormat] = {}
        # A model stopped mid-answer keeps its text in graphs that hold a conversation.
        self.records_partials = has_langchain() and holds_conversation(
            getattr(builder, "schemas", {}).values())
        self.repair_after_stop = repair_after_stop
        self._conversation = (messages_key(getattr(builder, "schemas", {}).values())
                              if repair_after_stop else None)

    def with_config(self, config: dict[str, Any] | None = None, **kwargs: Any
                    ) -> CompiledStateGraph:
        """A copy whose runs use `config` (merged under each call's own config)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.config = merge_configs(self.config, {**(config or {}), **kwargs})
        return clone

    def rebind(self, checkpointer: CheckpointStore, *, name: str | None = None,
               default_store: BaseStore | None = None) -> CompiledStateGraph:
        """The same graph recorded in `checkpointer` (and, given, served under `name`): its
        interrupts, config, long-term store, strictness and policies (budgets, loop detection,
        guards) kept. What the CLI, the server and workers run a user's graph as: itself when it
        is recorded there under that name already (with a long-term store, if one is offered).

        Args:
            default_store: the long-term store of the copy if this graph has none (a store
                the graph was compiled with is kept).
        """
        if (checkpointer is self.checkpointer and (name is None or name == self.name)
                and (self.store is not None or default_store is None)):
            return self
        bound = type(self)(
            self.builder, checkpointer=checkpointer,
            store=self.store if self.store is not None else default_store,
            interrupt_before=self.interrupt_before_nodes,
            interrupt_after=self.interrupt_after_nodes, name=name or self.name,
            config=self.config, strict=self.strict, cache=self.cache,
            cache_policy=self.cache_policy, repair_after_stop=self.repair_after_stop)
        bound.policy_defaults = self.policy_defaults
        return bound

    # -- building runs ----------------------------------------------------------------------

    def _request(self, graph_input: Any, config: dict[str, Any] | None, *,
                 stream_mode: Any = None, subgraphs: bool = False, context: Any = None,
                 interrupt_before: Any = None, interrupt_after: Any = None,
                 durability: Any = None, inline_sync: bool = False,
                 buffer_limit: int | None = None, version: str = "v1",
                 **ignored: Any) -> tuple[RunRequest, str]:
        if ignored:
            for key in ("debug", "print_mode", "output_keys", "checkpoint_during"):
                ignored.pop(key, None)
            if ignored:
                raise TypeError(f"unexpected arguments {sorted(ignored)}")
        if version not in ("v1", "v2"):
            raise ConfigError(f"stream version {version!r} is not supported (use 'v1' or 'v2')")
        rc = self._parse(config, durability)
        durable = self.checkpointer is not None
        if durable and rc.thread_id is None:
            raise ConfigError(
                "a graph compiled with a checkpointer needs config['configurable']['thread_id']"
            )
        run_id = rc.run_id or uuid7()
        if isinstance(stream_mode, str) or stream_mode is None:
            modes: tuple[str, ...] = () if stream_mode is None else (stream_mode,)
            single = True
        else:
            modes, single = tuple(stream_mode), False
        context = self._coerce_context(context)
        observer, on_end = self._watching(modes, rc, graph_input, run_id)
        request = RunRequest(
            spec=self.spec, input=graph_input, config=rc, store=self.ledger, durable=durable,
            pool=self.pool, stream=self._format(modes, single, subgraphs, version),
            context=context,
            interrupt_before=_pause(interrupt_before), interrupt_after=_pause(interrupt_after),
            inline_sync=inline_sync, buffer_limit=buffer_limit,
            metadata=self._metadata(rc),
            policies=self.policy_defaults, long_term_store=self._run_store(),
            cache=self.cache, cache_policy=self.cache_policy,
            observer=observer, on_end=on_end,
            closer=(ThreadCloser(self.ledger, self._conversation)
                    if durable and self._conversation is not None else None),
        )
        return request, run_id

    def _watching(self, modes: tuple[str, ...], rc: RunConfig, graph_input: Any,
                  run_id: str) -> tuple[Any, Callable[[Any], None] | None]:
        """The run's observer of its tasks' LangChain calls (for `messages` chunks, partial
        answers of a conversation), and what ends its trace: a run given callbacks
        (`config["callbacks"]`) is traced, its observer handing them to each node's calls."""
        callbacks = rc.raw.get("callbacks")
        if callbacks and has_langchain():
            trace = _trace(callbacks, rc.raw.get("run_name") or self.name, graph_input,
                           run_id, rc)
            return trace.observer(observer_for(modes, True)), trace.end
        if self.records_partials or "messages" in modes:
            return observer_for(modes, self.records_partials), None
        return None, None

    def _parse(self, config: dict[str, Any] | None, durability: Any) -> RunConfig:
        if config is None and durability is None:
            # Most runs bring no config: the graph's own is parsed once. A RunConfig is frozen
            # and nothing changes its dicts (a node's config is a copy: engine/report.py).
            bare = self._bare
            if bare is None or bare[0] is not self.config:
                rc = parse_config(merge_configs(self.config, None))
                bare = self._bare = (self.config, rc, self._metadata(rc))
            return bare[1]
        merged = merge_configs(self.config, config)
        if durability is not None:
            merged["durability"] = durability
        return parse_config(merged)

    def _metadata(self, rc: RunConfig) -> dict[str, Any]:
        bare = self._bare
        if bare is not None and bare[1] is rc and bare[2]["graph"] == self.name:
            return bare[2]
        given = rc.raw.get("metadata") or {}
        if given and self.checkpointer is not None:
            # A run's metadata is stored with its record: refused here, with the key named,
            # not by a store's JSON column mid-run (the same rule for every store).
            found = problem(given, nul=False)
            if found is not None:
                raise ConfigError(f"config['metadata'] cannot be stored: {found}")
        return {**given, "graph": self.name}

    def _format(self, modes: tuple[str, ...], single: bool, subgraphs: bool,
                version: str) -> StreamFormat:
        if version == "v1":
            key = (modes, single, subgraphs)
            found = self._formats.get(key)
            if found is None:
                found = self._formats[key] = StreamFormat(modes, single, subgraphs)
            return found
        return PartsFormat(modes, single, subgraphs,
                           output=coercing(getattr(self.builder, "output_schema", None)),
                           state=coercing(getattr(self.builder, "schema", None)))

    def _run_store(self) -> BaseStore | None:
        # The store belongs to the run, as in LangGraph: a graph run from inside a node of
        # another graph (`sub.invoke(...)` in a node or a tool) uses the calling run's store,
        # as a subgraph added as a node does, whatever it was compiled with.
        ctx = node_context.current()
        if ctx is None:
            return self.store
        return cast("BaseStore | None", getattr(ctx.runtime, "store", None))

    def _coerce_context(self, context: Any) -> Any:
        # A dict given for a dataclass or pydantic context schema is built into one, as in
        # LangGraph; TypedDict schemas stay dicts.
        if not isinstance(context, dict):  # most runs bring none: no schema to look up
            return context
        schema = getattr(self.builder, "context_schema", None)
        is_typeddict = hasattr(schema, "__total__")
        if isinstance(schema, type) and schema is not dict and not is_typeddict:
            return schema(**context)
        return context

    # -- async API ------------------------------------------------------------------------

    def astream(self, input: Any, config: dict[str, Any] | None = None, *,
                stream_mode: Any = None, **kwargs: Any) -> Run:
        """Start a run now and return its handle, an async iterator over its chunks.

        Cancellation:
            `await run.cancel()` / `await run.aclose()` stop it; iterating a cancelled run
            raises `RunCancelled`. Dropping the handle cancels the run. Every superstep is
            checkpointed (with a checkpointer), so a cancelled run can be resumed.
        """
        request, run_id = self._request(input, config,
                                        stream_mode=stream_mode or self.stream_mode, **kwargs)
        return Run(request, run_id, owned=True)

    async def ainvoke(self, input: Any, config: dict[str, Any] | None = None, *,
                      stream_mode: str = _VALUES, **kwargs: Any) -> Any:
        """Run to the end and return the final state (or the chunks, for other stream modes).

        Cancellation:
            Cancelling the caller cancels the run (recorded, final checkpoint written) and
            re-raises. A run cancelled by others raises `RunCancelled`.
        """
        return await self._ainvoke(input, config, stream_mode, False, kwargs)

    def _nested_site(self) -> Any:
        """The node attempt this graph is invoked from, when it runs under it (LangGraph's
        subgraph called from a node's code: its checkpoints, stream chunks, interrupts and
        parent commands go through its caller); None to run on its own."""
        if self.checkpointer is not None or node_context.current() is None:
            return None
        return current_site()

    async def _ainvoke(self, graph_input: Any, config: dict[str, Any] | None, stream_mode: str,
                       inline_sync: bool, kwargs: dict[str, Any]) -> Any:
        site = self._nested_site()
        if site is not None and stream_mode == _VALUES and not kwargs:
            return await site.run_graph(self.spec, graph_input)
        if stream_mode == _VALUES and kwargs.get("version") == "v2":
            request, run_id = self._request(graph_input, config, stream_mode=_VALUES,
                                            inline_sync=inline_sync, **kwargs)
            last: Any = None
            async for part in Run(request, run_id, owned=True):
                last = part
            if last is None:
                return GraphOutput(None)
            return GraphOutput(last["data"], last["interrupts"])
        if stream_mode == _VALUES:
            request, run_id = self._request(graph_input, config, inline_sync=inline_sync,
                                            **kwargs)
            return await Run(request, run_id, owned=True).result()
        request, run_id = self._request(graph_input, config, stream_mode=stream_mode,
                                        inline_sync=inline_sync, **kwargs)
        return [chunk async for chunk in Run(request, run_id, owned=True)]

    def start(self, input: Any, config: dict[str, Any] | None = None, *,
              stream_mode: Any = None, **kwargs: Any) -> Run:
        """Start a run in the background of the running loop; it is not tied to the handle.

        Raises:
            RuntimeError: called with no running event loop (use `invoke_async`).
        """
        if not portal.loop_running():
            raise RuntimeError("start() needs a running event loop; from sync code use "
                               "invoke_async(), which returns the run id")
        request, run_id = self._request(input, config, stream_mode=stream_mode,
                                        buffer_limit=1000, **kwargs)
        return Run(request, run_id, owned=False)

    def start_queued(self, run_id: str, input: Any, config: dict[str, Any] | None = None, *,
                     step_check: Callable[[], CancelReason | None] | None = None,
                     started: RunInfo | None = None, **kwargs: Any) -> Run:
        """Start, in the background of the running loop, a run whose record already exists in
        this graph's ledger (a queued run a worker claimed): the record is taken over, not made.

        Args:
            step_check: asked at every superstep boundary, before the policies; a reason
                stops the run there through its cancel path.
            started: the record, when the claim recorded the run's start already (see
                `RunRequest.started`).

        Raises:
            RuntimeError: called with no running event loop.
        """
        if not portal.loop_running():
            raise RuntimeError("start_queued() needs a running event loop")
        request, _ = self._request(input, {**(config or {}), "run_id": run_id},
                                   buffer_limit=1000, **kwargs)
        request.adopt, request.step_check, request.started = True, step_check, started
        return Run(request, run_id, owned=False)

    def invoke_async(self, input: Any, config: dict[str, Any] | None = None,
                     **kwargs: Any) -> str:
        """Start a run in the background (this loop, or tether's background thread); its id."""
        if portal.loop_running():
            return self.start(input, config, **kwargs).run_id

        async def begin() -> str:
            return self.start(input, config, **kwargs).run_id

        future = portal.submit(begin())
        return str(future.result())

    # -- sync API -------------------------------------------------------------------------

    def invoke(self, input: Any, config: dict[str, Any] | None = None, *,
               stream_mode: str = _VALUES, **kwargs: Any) -> Any:
        """Run to the end and return the final state. See `ainvoke`.

        Raises:
            RunTimeout: `config["timeout"]` passed.
            RunCancelled: the run was cancelled (by id, from another thread or process).
        """
        site = self._nested_site()
        if site is not None and stream_mode == _VALUES and not kwargs \
                and not portal.loop_running():
            return site.run_graph_sync(self.spec, input)
        return portal.run_sync(
            lambda private: self._ainvoke(input, config, stream_mode, private, kwargs)
        )

    def stream(self, input: Any, config: dict[str, Any] | None = None, *,
               stream_mode: Any = None, **kwargs: Any) -> Iterator[Any]:
        """Iterate over a run's chunks from sync code. Leaving the loop early cancels the run."""
        from tether.graph.sync_stream import iterate

        def begin(private: bool) -> Run:
            request, run_id = self._request(input, config,
                                            stream_mode=stream_mode or self.stream_mode,
                                            inline_sync=private, **kwargs)
            return Run(request, run_id, owned=True)

        return iterate(begin)

    # -- runs by id -----------------------------------------------------------------------

    def cancel(self, run_id: str, reason: CancelReason | str | None = None) -> RunInfo:
        """Cancel a run by id from any thread; returns once the request is durable."""
        return control.cancel(self.ledger, run_id, CancelReason.coerce(reason, default_by="id"))

    async def acancel(self, run_id: str, reason: CancelReason | str | None = None, *,
                      wait: bool = True) -> RunInfo:
        """Cancel a run by id; with `wait`, return once it has ended.

        Cancellation:
            The request is durable before this returns or is interrupted; safe to retry.
        """
        return await control.acancel(self.ledger, run_id,
                                     CancelReason.coerce(reason, default_by="id"), wait)

    def get_run(self, run_id: str) -> RunInfo:
        """A run's record."""
        return control.get(self.ledger, run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> RunInfo:
        """Block until the run has ended; its record."""
        return control.wait(self.ledger, run_id, timeout)

    async def await_run(self, run_id: str,
                        timeout: float | None = None) -> RunInfo:  # noqa: ASYNC109
        """Wait (async) until the run has ended; its record.

        Cancellation:
            Only the waiting stops; the run goes on.
        """
        return await control.await_run(self.ledger, run_id, timeout)

    def list_runs(self, thread_id: str | None = None,
                  status: RunStatus | str | None = None) -> list[RunInfo]:
        """Runs of this graph's ledger, newest first."""
        return control.list_runs(self.ledger, thread_id, status)

    def resume(self, run_id: str, config: dict[str, Any] | None = None, *,
               stream_mode: Any = None, **kwargs: Any) -> Run:
        """A new run on the same thread, from a cancelled (or failed) run's final checkpoint.

        Only the tasks that had not finished run again; the new run gets the full
        `recursion_limit` it is given.
        """
        from tether.graph.run_resume import resume_config

        cfg = resume_config(self, run_id, config)
        def make() -> Run:
            request, new_id = self._request(None, cfg, stream_mode=stream_mode,
                                            buffer_limit=1000, **kwargs)
            return Run(request, new_id, owned=False)

        if portal.loop_running():
            return make()

        async def begin() -> Run:
            return make()

        result: Run = portal.submit(begin()).result()
        return result

    # -- drawing --------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<CompiledStateGraph {self.name} nodes={list(self.nodes)}>"


def _trace(callbacks: Any, name: str, graph_input: Any, run_id: str, rc: RunConfig) -> Any:
    """The run's trace for the callbacks it was given (`tether.graph.tracing`, imported only
    then: it needs LangChain)."""
    from tether.graph.tracing import RunTrace

    return RunTrace(callbacks, name=name, graph_input=graph_input, run_id=run_id,
                    tags=rc.raw.get("tags"), metadata=rc.raw.get("metadata"))


def _long_term_store(store: Any) -> BaseStore | None:
    """`compile(store=...)` checked: a tether store, or one with LangGraph's `BaseStore`
    methods (LangGraph's own stores work in nodes as they are)."""
    if store is None or isinstance(store, BaseStore):
        return store
    if callable(getattr(store, "batch", None)) and callable(getattr(store, "abatch", None)):
        return cast(BaseStore, store)
    raise TypeError(
        f"store must be a long-term store (InMemoryStore, SqliteStore, PostgresStore...), "
        f"not {type(store).__module__}.{type(store).__name__}"
    )


def _pause(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


__all__ = ["CompiledStateGraph"]
