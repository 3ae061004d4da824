"""`StateGraph`: LangGraph's builder API. Nodes and edges are recorded here; `compile()`
checks the wiring and produces a runnable graph."""

from __future__ import annotations

import typing
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar

from tether.cancel.deadlines import coerce_timeout
from tether.constants import END, RESERVED_CHARS, RESERVED_NAMES, START
from tether.engine.spec import GraphSpec
from tether.errors import GraphCompileError
from tether.graph.assemble import assemble
from tether.graph.nodes import BranchDef, NodeDef, inspect_callable, node_name
from tether.graph.schema import Schema, schema_of
from tether.types import RetryPolicy, TimeoutPolicy

StateT = TypeVar("StateT")
ISOLATIONS = ("inline", "thread", "process")


class StateGraph(Generic[StateT]):
    """A graph whose nodes read and update a shared state.

    Args:
        state_schema: a TypedDict, dataclass or pydantic model; `Annotated[T, reducer]` keys
            fold every write with the reducer, other keys keep the last value.
        context_schema: the type of the static context given as `invoke(..., context=...)`.
        input_schema: the keys a caller's input may set (default: the state schema).
        output_schema: the keys a caller sees (default: the state schema).
    """

    def __init__(self, state_schema: type[StateT] | None = None,
                 context_schema: type[Any] | None = None, *,
                 input_schema: type[Any] | None = None, output_schema: type[Any] | None = None,
                 **kwargs: Any) -> None:
        input_schema = input_schema or kwargs.pop("input", None)
        output_schema = output_schema or kwargs.pop("output", None)
        state_schema = state_schema or kwargs.pop("config_schema", None) or input_schema
        if kwargs:
            raise TypeError(f"StateGraph() got unexpected arguments {sorted(kwargs)}")
        if state_schema is None:
            raise GraphCompileError("StateGraph needs a state schema")
        self.state_schema = state_schema
        self.context_schema = context_schema
        self.schema: Schema = schema_of(state_schema)
        self.input_schema = schema_of(input_schema) if input_schema is not None else self.schema
        self.output_schema = (schema_of(output_schema) if output_schema is not None
                              else self.schema)
        self.schemas: dict[Any, Schema] = {}
        for schema in (self.schema, self.input_schema, self.output_schema):
            self._add_schema(schema)
        self.nodes: dict[str, NodeDef] = {}
        self.edges: list[tuple[str, str]] = []
        self.waiting_edges: list[tuple[tuple[str, ...], str]] = []
        self.branches: dict[str, dict[str, BranchDef]] = {}

    def _add_schema(self, schema: Schema) -> None:
        if schema.cls not in self.schemas:
            self.schemas[schema.cls] = schema

    @property
    def channels(self) -> dict[str, Any]:
        """Every state key of every schema, with its channel factory (first definition wins)."""
        out: dict[str, Any] = {}
        for schema in self.schemas.values():
            for key in schema.keys:
                out.setdefault(key, schema.channels[key])
        return out

    @property
    def managed(self) -> dict[str, Any]:
        """Every managed-value key of every schema (`RemainingSteps`...), with its class."""
        out: dict[str, Any] = {}
        for schema in self.schemas.values():
            for key, spec in schema.managed.items():
                out.setdefault(key, spec)
        return out

    def compile_spec(self, interrupt_before: tuple[str, ...], interrupt_after: tuple[str, ...],
                     name: str, *, strict: bool = False) -> GraphSpec:
        """What the engine runs for this builder (a compiled graph asks for it)."""
        return assemble(self, interrupt_before, interrupt_after, name, strict=strict)

    # -- nodes ----------------------------------------------------------------------------

    def add_node(self, node: str | Callable[..., Any] | Any, action: Any = None, *,
                 defer: bool = False, metadata: dict[str, Any] | None = None,
                 input_schema: type[Any] | None = None,
                 retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
                 retry: RetryPolicy | Sequence[RetryPolicy] | None = None,
                 timeout: float | timedelta | TimeoutPolicy | None = None,
                 isolation: str | None = None,
                 cancel_grace: float | None = None,
                 destinations: dict[str, str] | tuple[str, ...] | None = None,
                 cache_policy: Any = None, **kwargs: Any) -> StateGraph[StateT]:
        """Add a node.

        Args:
            node: the node's name, or the callable itself (named after its `__name__`).
            action: the callable (sync or async), a compiled graph, or a Runnable.
            retry_policy: LangGraph's keyword for retry policies (`retry` is an alias).
            timeout: seconds one attempt may take (or a `TimeoutPolicy` with a run and/or an
                idle limit); the attempt is cancelled past it and fails with
                `NodeTimeoutError` (retried like any error).
            isolation: where a sync node runs: `"thread"` (tether's worker threads),
                `"process"` (a worker process, killed if it does not stop), or `"inline"` (the
                event loop's thread: fastest, but it cannot be abandoned). Default: inline when
                the node is alone in its step under a sync `invoke` with no deadline, else thread.
            cancel_grace: seconds the node has to stop after a cancel (default: the run's).
            destinations: nodes a `Command`-returning node may go to (for checks and drawing).
            cache_policy: reuse the node's writes for an input seen before (a `CachePolicy`;
                needs `compile(cache=...)`).

        Raises:
            GraphCompileError: a duplicate or reserved name, or a bad option.
        """
        kwargs.pop("trace_policy", None)
        if kwargs:
            raise TypeError(f"add_node() got unexpected arguments {sorted(kwargs)}")
        if action is None:
            if isinstance(node, str):
                raise GraphCompileError(f"Node '{node}' needs a callable")
            action, name = node, node_name(node)
        else:
            if not isinstance(node, str):
                raise GraphCompileError("add_node(name, action): name must be a string")
            name = node
        self._check_name(name)
        policies = retry_policy if retry_policy is not None else retry
        if isinstance(policies, RetryPolicy):
            policies = (policies,)
        if isolation is not None and isolation not in ISOLATIONS:
            raise GraphCompileError(
                f"Node '{name}': isolation must be one of {ISOLATIONS}, not {isolation!r}"
            )
        run_limit, idle_limit = (
            (timeout.run_timeout, timeout.idle_timeout) if isinstance(timeout, TimeoutPolicy)
            else (timeout, None)
        )
        subgraph = action if _is_compiled(action) else None
        call = inspect_callable(action) if subgraph is None else None
        node_schema = schema_of(input_schema) if input_schema is not None else None
        if node_schema is None and call is not None:
            node_schema = _annotation_schema(call.first_annotation, self.state_schema)
        if node_schema is not None:
            self._add_schema(node_schema)
        dests = tuple(destinations) if destinations is not None else None
        self.nodes[name] = NodeDef(
            name=name,
            call=call if call is not None else inspect_callable(_placeholder),
            input_schema=node_schema,
            retry=tuple(policies or ()),
            timeout=coerce_timeout(run_limit, f"timeout of node '{name}'"),
            idle_timeout=coerce_timeout(idle_limit, f"idle timeout of node '{name}'"),
            isolation=isolation,
            cancel_grace=coerce_timeout(cancel_grace, f"cancel_grace of node '{name}'"),
            destinations=dests if dests is not None else (call.destinations if call else None),
            subgraph=subgraph,
            defer=defer,
            metadata=dict(metadata or {}),
            cache_policy=cache_policy,
        )
        return self

    def _check_name(self, name: str) -> None:
        if name in RESERVED_NAMES:
            raise GraphCompileError(f"Node `{name}` is reserved.")
        for char in RESERVED_CHARS:
            if char in name:
                raise GraphCompileError(
                    f"'{char}' is a reserved character and is not allowed in the node names "
                    f"(node {name!r})."
                )
        if name in self.nodes:
            raise GraphCompileError(f"Node `{name}` already present.")

    def add_sequence(self, nodes: Sequence[Callable[..., Any] | tuple[str, Any]]
                     ) -> StateGraph[StateT]:
        """Add nodes that run one after the other, with edges between consecutive ones."""
        if not nodes:
            raise GraphCompileError("add_sequence() needs at least one node")
        previous: str | None = None
        for item in nodes:
            if isinstance(item, tuple):
                name, action = item
                self.add_node(name, action)
            else:
                name = node_name(item)
                self.add_node(item)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    # -- edges ----------------------------------------------------------------------------

    def add_edge(self, start_key: str | list[str], end_key: str) -> StateGraph[StateT]:
        """Add an edge; a list of sources makes `end_key` wait until all of them have run."""
        if isinstance(start_key, str):
            if start_key == END:
                raise GraphCompileError("END cannot be a start node")
            if end_key == START:
                raise GraphCompileError("START cannot be an end node")
            self.edges.append((start_key, end_key))
            return self
        sources = tuple(start_key)
        if not sources:
            raise GraphCompileError("add_edge() needs at least one source")
        for source in sources:
            if source == END:
                raise GraphCompileError("END cannot be a start node")
        if end_key in (START, END):
            raise GraphCompileError(f"{end_key} cannot be the end of a waiting edge")
        if len(sources) == 1:
            self.edges.append((sources[0], end_key))
        else:
            self.waiting_edges.append((sources, end_key))
        return self

    def add_conditional_edges(self, source: str, path: Callable[..., Any],
                              path_map: Mapping[Hashable, str] | Sequence[str] | None = None
                              ) -> StateGraph[StateT]:
        """Route from `source` to whatever `path(state)` answers.

        Args:
            path: returns a node name, a list of names, `Send` objects, or `END`.
            path_map: maps the answers to node names (a list means names map to themselves).
        """
        if source == END:
            raise GraphCompileError("END cannot be a start node")
        name = getattr(path, "__name__", None) or "condition"
        if name == "<lambda>":
            name = "condition"
        branches = self.branches.setdefault(source, {})
        if name in branches:
            raise GraphCompileError(f"Branch with name `{name}` already exists for node `{source}`")
        mapping: dict[Hashable, str] | None
        if path_map is None:
            mapping = None
        elif isinstance(path_map, Mapping):
            mapping = dict(path_map)
        else:
            mapping = {p: p for p in path_map}
        branches[name] = BranchDef(name, path, mapping)
        return self

    def set_entry_point(self, key: str) -> StateGraph[StateT]:
        """Start the graph at `key` (an edge from START)."""
        return self.add_edge(START, key)

    def set_conditional_entry_point(self, path: Callable[..., Any],
                                    path_map: Mapping[Hashable, str] | Sequence[str] | None = None
                                    ) -> StateGraph[StateT]:
        """Start the graph wherever `path(input)` answers."""
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> StateGraph[StateT]:
        """End the graph after `key` (an edge to END)."""
        return self.add_edge(key, END)

    # -- compile --------------------------------------------------------------------------

    def validate(self, interrupt: Sequence[str] | None = None, *,
                 strict: bool = False) -> StateGraph[StateT]:
        """Check the wiring; raises `GraphCompileError` naming the node or edge at fault (with
        `strict`, also for a node nothing reaches; else that is a `StrictnessWarning`)."""
        from tether.graph.validate import validate

        validate(self, interrupt or (), strict=strict)
        return self

    def compile(self, checkpointer: Any = None, *, cache: Any = None, store: Any = None,
                interrupt_before: Sequence[str] | str | None = None,
                interrupt_after: Sequence[str] | str | None = None, debug: bool = False,
                name: str | None = None, budget: dict[str, Any] | None = None,
                loop_detection: dict[str, Any] | bool | None = None,
                guards: Sequence[Any] = (), strict: bool = False, repair_after_stop: bool = True,
                **kwargs: Any) -> Any:
        """Check the wiring and build a runnable graph.

        Args:
            checkpointer: a store (`InMemorySaver`, `SqliteSaver`...) for persistence; also
                `True`/`None` for a subgraph to share its parent's (LangGraph's convention).
            interrupt_before: nodes to pause before (`"*"` for all).
            interrupt_after: nodes to pause after.
            budget: default limits for every run (a run's `config["budget"]` overrides keys):
                steps, wall_time, node_calls, tokens, cost, tool_calls, errors_per_minute,
                tool_calls_per_minute.
            loop_detection: `{"max_repeats": n, "no_progress_steps": n, "fields": [...]}`, or
                False to turn it off.
            guards: callables `guard(step, writes, state)` that may veto a step's writes.
            strict: refuse what LangGraph accepts but is likely a mistake — a node no edge,
                branch, `Command` or `Send` can reach (at compile), a node returning a key the
                state lacks (when it does). Without it both are a `StrictnessWarning`, once
                per node and key, and the unknown key is dropped as LangGraph drops it.
            repair_after_stop: when a new input (not a resume) reaches a thread whose last
                run stopped (cancel, timeout, error...) with tool calls unanswered, first
                close the conversation: the results the run kept, an error `ToolMessage`
                ("Cancelled: <why>") for every other call, and the partial answer it kept.
                On by default (it only acts on a state with an `add_messages` channel).

        Raises:
            GraphCompileError: the wiring is wrong; the message names the node or edge.
        """
        from tether.graph.compiled import CompiledStateGraph

        del debug
        kwargs.pop("transformers", None)
        if kwargs:
            raise TypeError(f"compile() got unexpected arguments {sorted(kwargs)}")
        if not isinstance(repair_after_stop, bool):
            raise TypeError("compile(repair_after_stop=...) must be True or False, not "
                            f"{type(repair_after_stop).__name__}")
        before = _pause_list(interrupt_before)
        after = _pause_list(interrupt_after)
        self.validate([*before, *after], strict=strict)
        from tether.runs.policies import Budget, LoopSettings, PolicyDefaults

        Budget.parse(budget)
        LoopSettings.parse(loop_detection)
        compiled = CompiledStateGraph(self, checkpointer=checkpointer, store=store,
                                      interrupt_before=before, interrupt_after=after,
                                      name=name or "LangGraph", strict=strict, cache=cache,
                                      repair_after_stop=repair_after_stop)
        compiled.policy_defaults = PolicyDefaults(dict(budget or {}), loop_detection,
                                                  tuple(guards))
        return compiled


def _pause_list(value: Sequence[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _is_compiled(action: Any) -> bool:
    return hasattr(action, "spec") and hasattr(action, "builder") and hasattr(action, "astream")


def _placeholder(_state: Any) -> None:
    return None


def _annotation_schema(annotation: Any, state_schema: Any) -> Schema | None:
    import inspect

    if annotation is inspect.Parameter.empty or annotation is None or annotation is state_schema:
        return None
    if not isinstance(annotation, type):
        return None
    # As LangGraph: only an annotation with keys of its own (not `dict`) narrows the input.
    try:
        if not typing.get_type_hints(annotation):
            return None
    except (NameError, TypeError):
        return None
    try:
        return schema_of(annotation)
    except GraphCompileError:
        return None


def __getattr__(name: str) -> Any:
    # LangGraph's path `langgraph.graph.state.CompiledStateGraph`, imported on first use: the
    # compiled graph's module imports this one.
    if name == "CompiledStateGraph":
        from tether.graph.compiled import CompiledStateGraph

        return CompiledStateGraph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
