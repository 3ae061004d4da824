"""A task: one execution of a node in one superstep, and what became of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tether.cancel.scope import CancelHook, CancelScope
from tether.checkpoint.ids import task_id
from tether.engine.spec import NodeSpec, Write
from tether.types import Interrupt

PULL = "__pregel_pull"
PUSH = "__pregel_push"

TaskOutcome = Literal["pending", "done", "error", "interrupted", "cancelled"]
StopMode = Literal["cooperative", "terminated", "abandoned", "killed"]

_SHOWN: dict[str, bool] = {}
"""Whether a channel's writes are state updates, by channel name (a graph's channels are few
and every step asks again; bounded by `_SHOWN_MOST` names)."""
_SHOWN_MOST = 4096


def shown(channel: str) -> bool:
    """Whether writes to `channel` are state updates (not a trigger, a barrier or a control
    write), remembered while `_SHOWN` has room."""
    answer = bool(channel) and not channel.startswith(("branch:", "join:", "__"))
    if len(_SHOWN) < _SHOWN_MOST:
        _SHOWN[channel] = answer
    return answer


@dataclass(slots=True, eq=False)
class Task:
    """One node execution in one superstep.

    Invariant: `writes` is set only when `outcome == "done"`, and only if the task finished before
    any cancel of its run was requested (`finished_at < run scope's cancelled_at`).
    """

    node: NodeSpec
    input: Any
    path: tuple[str, str | int]
    step: int
    _id: str = ""
    outcome: TaskOutcome = "pending"
    writes: list[Write] | None = None
    update: Any = None
    error: BaseException | None = None
    interrupts: tuple[Interrupt, ...] = ()
    # Read-only until a task has some: the empty tuple is shared (no list per task).
    resume: Sequence[Any] = ()
    scope: CancelScope | None = None
    finished_at: float | None = None
    stop_mode: StopMode | None = None
    cached: bool = False
    hooks: Sequence[tuple[str, CancelHook]] = ()
    # What the id is made of, when it is derived from a checkpoint: computed on first use, as
    # most tasks finish without anybody asking for it.
    id_key: tuple[str, str, int] | None = None
    interrupt_count: int = 0
    # The index of the answer `interrupt()` last returned (withdrawn should it be refused).
    answered: int | None = None
    # Answers this task took from a resume addressed to no task (kept with its pause).
    claimed: Sequence[Any] = ()
    # The node that failed, when the task's error came from inside its subgraph (`sub/inner`).
    failed_node: str | None = None
    # For a call (`tether.engine.calls`): the task (or call) that launched it, and its spec.
    parent: Task | None = None
    spec: Any = None
    # The calls this task's attempt launched, in order, and the site that launched them.
    calls: list[Task] | None = None
    site: Any = None
    # What the last attempt left unfinished, as its observer saw it (partial model answers).
    partials: list[dict[str, Any]] | None = None
    # How many writes at the head of `writes` are the state writes its node's answer made (set
    # with them by the router, `Router.writes_for`; -1: not known, as for writes recalled from
    # a cache or a checkpoint). What `state_update` shows, when its node's writes are all shown.
    state_writes: int = -1

    @property
    def id(self) -> str:
        """The task's id (deterministic: a resumed step finds its tasks' writes by it)."""
        if not self._id:
            key = self.id_key
            if key is None:
                self._id = f"{self.step}:{self.path_str}"
            else:
                checkpoint_id, ns, step = key
                self._id = task_id(checkpoint_id, ns, step, self.name, self.path_str)
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    def key_id(self, checkpoint_id: str, ns: str) -> None:
        """Derive the id, when it has none yet, from the checkpoint its step starts from."""
        if self.id_key is None and not self._id:
            self.id_key = (checkpoint_id, ns, self.step)

    @property
    def name(self) -> str:
        """The node's name."""
        return self.node.name

    @property
    def sort_key(self) -> tuple[int, str | int]:
        """LangGraph's write order: pull tasks by node name, then push tasks by index."""
        kind, detail = self.path
        return (0, detail) if kind == PULL else (1, detail)

    def state_update(self) -> Any:
        """What `updates` chunks show of the task: its writes to state keys (None if none),
        or what its node says it shows (a functional graph's return value)."""
        head = self.state_writes
        if head >= 0 and self.node.writes_shown:
            # The router's state writes lead `writes` (the edges, branches and gotos follow):
            # the update is that head, the last write to a key winning as below. (Not
            # `dict(writes[:head])`: built by opcodes, a small dict is made faster.)
            writes = self.writes
            if head == 1 and writes:  # the usual update: one key
                channel, value = writes[0]
                return {channel: value}
            if not head or not writes:
                return None
            update = {}
            for channel, value in writes[:head]:
                update[channel] = value
            return update
        node, writes = self.node, self.writes
        if node.shows is not None:
            return node.shows(writes or [])
        if not writes:
            return None
        update = {}
        for channel, value in writes:
            seen = _SHOWN.get(channel)
            if seen is None:
                seen = shown(channel)
            if seen:
                update[channel] = value
        return update or None

    @property
    def path_str(self) -> str:
        """The path as text, for task ids."""
        return f"{self.path[0]}|{self.path[1]}"
