"""What the engine runs: a compiled graph reduced to nodes, channels and triggers.

The builder (`tether.graph`) produces a `GraphSpec`; the engine never imports the builder. Every
callable here is already adapted by the builder (schema coercion, update validation), so the
engine only schedules, runs and commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.channels.base import BaseChannel
from tether.constants import TASKS
from tether.managed.base import ManagedValueSpec
from tether.types import RetryPolicy

Isolation = Literal["inline", "thread", "process"]
"""Where a sync node runs: the loop's thread, tether's worker threads, or a worker process."""

Write = tuple[str, Any]
"""One write: (channel, value)."""

NODE_KWARGS = frozenset({"config", "runtime", "writer", "store"})
"""Keyword parameters a node or path function may declare to receive engine objects."""


@dataclass(frozen=True, slots=True)
class BranchSpec:
    """A conditional edge: a path function whose answer picks the next nodes.

    Attributes:
        name: the branch's name (the path function's name), for messages.
        path: the user's function; takes the state (and maybe `config`).
        is_async: whether `path` must be awaited.
        kwargs: which engine objects `path` takes.
        path_map: maps the function's answers to node names (None: answers are node names).
        reader: turns the state dict into the path function's argument.
    """

    name: str
    path: Callable[..., Any]
    is_async: bool
    kwargs: frozenset[str] = frozenset()
    path_map: Mapping[Any, str] | None = None
    reader: Callable[[dict[str, Any]], Any] | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One vertex of the graph, ready to run.

    Attributes:
        name: the node's name.
        func: the callable (sync or async) taking the node's input.
        is_async: whether `func` returns an awaitable.
        kwargs: which engine objects `func` takes (see `NODE_KWARGS`).
        reader: builds the node's input from the state dict (None: a copy of the dict).
        updates: turns the node's return value into state writes; raises `InvalidUpdateError`
            naming the node when the value is not an update.
        edges: trigger writes made whenever the node finishes (plain and join edges).
        branches: conditional edges evaluated when the node finishes.
        retry: retry policies, first matching wins.
        timeout: seconds one attempt may take.
        idle_timeout: seconds an attempt may go without a sign of life.
        isolation: where a sync node runs (None: decided per step by the engine).
        subgraph: a child `GraphSpec` when the node is a compiled graph.
        cancel_grace: seconds the node has to stop after a cancel (None: the run's).
        shows: what the node's `updates` chunk shows, from its writes (None: its writes to
            state keys); a functional graph's node shows the value it returned.
        cache: its `CachePolicy` (None: never cached).
        cache_ns: where its cached writes are filed (after LangGraph's namespace prefix).
        writes_shown: whether every write `updates` makes is shown in its `updates` chunk
            (no state key of its graph is named like a trigger or control channel): the
            update is then the head of its task's writes, taken without looking at each
            channel (`Task.state_update`). A node that sets `shows` leaves it False.
    """

    name: str
    func: Callable[..., Any]
    is_async: bool
    kwargs: frozenset[str] = frozenset()
    reader: Callable[[dict[str, Any]], Any] | None = None
    updates: Callable[[Any], list[Write]] | None = None
    edges: tuple[Write, ...] = ()
    branches: tuple[BranchSpec, ...] = ()
    retry: tuple[RetryPolicy, ...] = ()
    timeout: float | None = None
    idle_timeout: float | None = None
    isolation: Isolation | None = None
    subgraph: GraphSpec | None = None
    cancel_grace: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    shows: Callable[[list[Write]], Any] | None = None
    cache: Any = None
    cache_ns: tuple[str, ...] = ()
    writes_shown: bool = False


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """A whole graph as the engine sees it.

    Attributes:
        name: the graph's name.
        nodes: nodes in declaration order.
        channels: a factory per channel (state keys and triggers).
        state_keys: channels that make up the state, in schema order.
        output_keys: state keys a caller sees (the output schema).
        input_keys: state keys the input may set (the input schema).
        input_writes: turns the caller's input into writes (raises on bad input).
        start: the virtual START node: its edges and branches route the input (None: the
            input's writes trigger the first tasks themselves, LangGraph's functional graphs).
        triggers: for each trigger channel, the nodes it starts.
        output: turns the state into what `invoke` returns (the output schema's keys).
        values: turns the state into a `values` stream chunk (the state schema's keys).
        interrupt_before: nodes to pause before (compile time).
        interrupt_after: nodes to pause after (compile time).
        order: each node's position in declaration order.
        barriers: for each node, the channels its task consumes when it runs: the join
            barriers that start it, and a deferred node's own trigger.
        managed: state keys the engine computes for each task from the step budget
            (`RemainingSteps`...), given to readers and conditional edges, never stored.
        deferred: the trigger channels of deferred nodes (`defer=True`): they fire once a step
            leaves nothing else due (`BaseChannel.finish`).
        root: the channel whose value is the whole state (a functional graph's return
            value), or None for a state of keys. A root state shows as that value (None when
            empty) where a state of keys shows as a dict (`{}` when empty).
        compares_whole: whether the loop tells a step's progress by comparing the whole
            state before and after its commit (in C) rather than each written key: a commit
            changes only the keys it writes (no state key is a trigger channel, which a commit
            clears when nobody wrote it again), and the state has at most `WHOLE_MOST` keys.
    """

    name: str
    nodes: Mapping[str, NodeSpec]
    channels: Mapping[str, Callable[[], BaseChannel]]
    state_keys: tuple[str, ...]
    output_keys: tuple[str, ...]
    input_keys: tuple[str, ...]
    input_writes: Callable[[Any], list[Write]]
    start: NodeSpec | None
    triggers: Mapping[str, tuple[str, ...]]
    output: Callable[[dict[str, Any]], Any] = dict
    values: Callable[[dict[str, Any]], Any] = dict
    interrupt_before: frozenset[str] = frozenset()
    interrupt_after: frozenset[str] = frozenset()
    order: Mapping[str, int] = field(default_factory=dict)
    barriers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    managed: Mapping[str, ManagedValueSpec] = field(default_factory=dict)
    deferred: tuple[str, ...] = ()
    root: str | None = None
    # `state_keys` as a set, made once per graph rather than once per run.
    state_key_set: frozenset[str] = field(init=False, repr=False, compare=False)
    compares_whole: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = frozenset(self.state_keys)
        object.__setattr__(self, "state_key_set", keys)
        object.__setattr__(self, "compares_whole", len(keys) <= WHOLE_MOST
                           and keys.isdisjoint(self.triggers) and TASKS not in keys)


WHOLE_MOST = 16
"""The most state keys whose values the loop compares all at once for progress: a dict
comparison looks every key up in the other dict, and from about 24 keys on that costs more
than looking up a step's few written keys one by one."""
