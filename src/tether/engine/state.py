"""The channels of one graph run and the state they make: restored from a checkpoint, advanced
by a step's writes, planned from, previewed and viewed.

Invariants:
- `values` holds, for every state key whose channel has a value, that value (in the schema's
  order); it is brought in line with the channels after every change made here, except by
  `restore`, whose caller refreshes it (`refresh_all`) once it knows how the run starts.
- `channels` holds one channel per channel of the spec, except the `Send` topic (`TASKS`),
  made on its first write or restored value: most graphs never send, and runs start by the
  thousand. Its absence reads as an empty topic.
- `live` holds the trigger channels (and the `Send` topic) that held a value after the last
  change; `commit` clears those its writes do not write again (an edge fires once). It is
  immutable, replaced on every change: a set of one channel is shared by every run.
- `step` is the step of the last commit (or of the checkpoint restored).
- `stop` is the first step the run's recursion budget does not allow (None until the run
  knows it); the managed values of a planned task are computed from it.
- `version` counts the changes made to `values`; `written` is what the last one may have
  replaced: the channels a commit (or `put`) updated, or None when unknown (anything). What
  lets a reader keep something derived from `values` up to date from the written keys alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tether.channels.base import BaseChannel
from tether.checkpoint.base import StoredCheckpoint
from tether.constants import NULL_TASK_ID, TASKS
from tether.engine.apply import apply_grouped, preview, refresh_values
from tether.engine.plan import consume_triggers, managed_values, plan_tasks
from tether.engine.spec import GraphSpec, Write
from tether.engine.task import Task

_NONE: frozenset[str] = frozenset()
_ONE: dict[str, frozenset[str]] = {}
"""One set per channel name, shared: the live triggers of a step that has one."""


class ChannelState:
    """The channels, the state dict and the live triggers of one run of one graph.

    Args:
        spec: the graph.
    """

    __slots__ = ("_node_triggers", "channels", "live", "plain_inputs", "spec", "state_keys",
                 "step", "stop", "values", "version", "written")

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.channels: dict[str, BaseChannel] = {
            k: f() for k, f in spec.channels.items() if k != TASKS}
        self.values: dict[str, Any] = {}
        self.state_keys = spec.state_key_set
        self.step = -1
        self.stop: int | None = None
        self.live: frozenset[str] = _NONE
        self._node_triggers: dict[str, tuple[str, ...]] | None = None
        self.version = 0
        self.written: set[str] | None = None
        # Whether a node without an input schema gets a copy of `values` as its input.
        self.plain_inputs = not spec.managed

    # -- changing the state ---------------------------------------------------------------

    def restore(self, stored: StoredCheckpoint) -> set[str]:
        """Take the channel values and the step of a stored checkpoint, with the writes given to
        it from outside (a `Command`) applied. Returns the channels those writes changed."""
        channels = self.channels
        self._open_topic(stored.values)
        for key, value in stored.values.items():
            channel = channels.get(key)
            if channel is not None:
                channel.restore(value)
        self.step = stored.step
        self.written = None
        self.version += 1
        changed: set[str] = set()
        null = [w for w in stored.pending_writes if w.task_id == NULL_TASK_ID]
        if null:
            grouped: dict[str, list[Any]] = {}
            for w in sorted(null, key=lambda w: w.idx):
                grouped.setdefault(w.channel, []).append(w.value)
            self._open_topic(grouped)
            changed = apply_grouped(channels, grouped, ())
        self.live = self.triggers_in(channels)
        return changed

    def commit(self, grouped: Mapping[str, list[Any]]) -> set[str]:
        """Apply a step's grouped writes as the next step: the previous step's triggers not
        written again are cleared. Returns the channels that changed."""
        self._open_topic(grouped)
        updated = apply_grouped(self.channels, grouped, self.live)
        self.step += 1
        refresh_values(self.channels, self.values, self.state_keys, updated)
        self.written = updated  # (deferred channels fired below join it: no state keys)
        self.version += 1
        self.live = self.triggers_in(updated)
        if self.spec.deferred and not self._due(self.live):
            # Nothing else is due: the run would end here, so deferred nodes fire now.
            channels = self.channels
            fired = {c for c in self.spec.deferred if channels[c].finish()}
            updated |= fired
            self.live |= self.triggers_in(fired)
        return updated

    def _due(self, live: frozenset[str]) -> bool:
        """Whether a node trigger among `live` starts a task (a pending `Send` does not hold
        deferred nodes back, as in LangGraph)."""
        triggers = self.spec.triggers
        return any(c in triggers for c in live)

    def put(self, grouped: Mapping[str, list[Any]]) -> set[str]:
        """Apply writes within the current step (a `Command` given to a paused thread): nothing
        is cleared and the step does not move. Returns the channels that changed."""
        self._open_topic(grouped)
        updated = apply_grouped(self.channels, grouped, ())
        refresh_values(self.channels, self.values, self.state_keys, updated)
        self.written = updated
        self.version += 1
        self.live |= self.triggers_in(updated)
        return updated

    def _open_topic(self, keys: Iterable[str]) -> None:
        """Make the `Send` topic when `keys` (what is about to be written or restored) has it
        and it is not made yet."""
        if TASKS in keys and TASKS not in self.channels:
            factory = self.spec.channels.get(TASKS)
            if factory is not None:
                self.channels[TASKS] = factory()

    def move_to(self, step: int) -> None:
        """Make `step` the current one without writes (an input checkpoint, or a fork, takes a
        step of its own)."""
        self.step = step

    def start_input(self, channel: str, value: Any) -> bool:
        """Put the run's input on `channel` (the input checkpoint's record of it); True when
        it changed."""
        target = self.channels.get(channel)
        if target is None or not target.update([value]):
            return False
        self.written = None
        self.version += 1
        self.live = self.live | {channel}
        return True

    def consume(self, tasks: Iterable[Task]) -> list[str]:
        """Reset the join barriers that fired for `tasks`; returns the channels that changed."""
        return consume_triggers(self.spec, self.channels, tasks)

    def refresh_all(self) -> None:
        """Bring every state key of `values` in line with its channel."""
        refresh_values(self.channels, self.values, self.state_keys, self.state_keys)
        self.written = None
        self.version += 1

    # -- reading the state ----------------------------------------------------------------

    def triggers_in(self, channels: Iterable[str]) -> frozenset[str]:
        """The trigger channels among `channels` that hold a value now (a set of one is
        shared by every run: most steps have one, and runs start by the thousand)."""
        triggers, all_channels = self.spec.triggers, self.channels
        found = [c for c in channels
                 if (c in triggers or c == TASKS) and all_channels[c].is_available()]
        if len(found) > 1:
            return frozenset(found)
        if not found:
            return _NONE
        one = _ONE.get(found[0])
        if one is None:
            one = _ONE[found[0]] = frozenset(found)
        return one

    def plan(self, candidates: Iterable[str] | None) -> list[Task]:
        """The tasks of the next step (`candidates`: the channels that changed; None: all)."""
        return plan_tasks(self.spec, self.channels, self.values, self.step + 1, candidates,
                          stop=self.stop)

    def preview(self, writes: Sequence[Write]) -> dict[str, Any]:
        """The state with only `writes` applied (what a conditional edge of a task of the next
        step sees, managed values included)."""
        seen = preview(self.channels, self.values, self.state_keys, writes)
        if self.spec.managed:
            seen.update(managed_values(self.spec, self.step + 1, self.stop))
        return seen

    def view(self, values: dict[str, Any] | None = None) -> Any:
        """The state (or `values`) as a `values` chunk shows it: the state schema's keys."""
        return self.spec.values(self.values if values is None else values)

    def shown(self, values: dict[str, Any] | None = None) -> Any:
        """The state as a checkpoint shows it (`get_state`, `checkpoints` chunks): the view,
        or `{}` for a state of keys none of which has a value yet."""
        seen = self.view(values)
        return {} if seen is None and self.spec.root is None else seen

    def output(self, values: dict[str, Any] | None = None) -> Any:
        """The state (or `values`) as `invoke` returns it: the output schema's keys."""
        return self.spec.output(self.values if values is None else values)

    def appended(self, key: str, value: Any) -> tuple[int, int] | None:
        """When `value` is the value of `key` and the last commit made it by appending items
        to a list: the id of that list and how many items were appended (see
        `BaseChannel.appended_to`); else None."""
        channel = self.channels.get(key)
        return None if channel is None else channel.appended_to(value)

    def triggers_of(self, node: str) -> tuple[str, ...]:
        """The channels that trigger `node`, as `debug` chunks and task metadata show them."""
        found = self._node_triggers
        if found is None:
            found = self._node_triggers = {}
            for channel, nodes in self.spec.triggers.items():
                for name in nodes:
                    found[name] = (*found.get(name, ()), channel)
        return found.get(node, ())


__all__ = ["ChannelState"]
