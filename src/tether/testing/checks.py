"""What must hold after a run was cancelled at one cancel point, each check a pure function of
what the run left behind; a check returns the broken invariant's description, or None."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.lifecycle import CANCEL_PHASES
from tether.types import Command, RunEvent, RunInfo, RunSnapshot, RunStatus


@dataclass(frozen=True, slots=True)
class Reference:
    """What the uncancelled run of the graph did.

    Attributes:
        output: what it returned.
        values: its final state.
        steps: the state after each superstep, by step.
        returns: what each task's node returned, by (node, step, task).
    """

    output: Any
    values: Any
    steps: Mapping[int, Any]
    returns: Mapping[tuple[str, int, int], Any]


def status(info: RunInfo, message: str) -> str | None:
    """The run ended `cancelled` with the sweep's own reason."""
    if info.status is not RunStatus.CANCELLED:
        return f"status is {info.status.value}, not cancelled"
    reason = info.reason
    if reason is None or reason.kind != "user" or reason.message != message:
        return f"reason is {reason!r}, not the sweep's"
    return None


def phases(events: Sequence[RunEvent]) -> str | None:
    """The audit log holds the six phases of the stop, in order."""
    seen = [e.phase for e in events if e.phase in CANCEL_PHASES]
    firsts = [p for i, p in enumerate(seen) if i == 0 or seen[i - 1] != p]
    if firsts != list(CANCEL_PHASES):
        return f"audit log phases are {seen}, not the six phases in order"
    return None


def checkpoint(snapshot: RunSnapshot, ref: Reference, node: str,
               finished: Sequence[tuple[str, int, int]] = ()) -> str | None:
    """The final checkpoint is a superstep of the reference, plus only finished tasks' writes
    (each equal to what its task wrote in the reference), never the stopped node's, and the
    writes of every task in `finished` (those that returned before the cancel)."""
    values = plain(snapshot.values)
    if snapshot.step in ref.steps and values != plain(ref.steps[snapshot.step]):
        return (f"final checkpoint values {snapshot.values!r} are not the reference's at step "
                f"{snapshot.step} ({ref.steps[snapshot.step]!r})")
    if snapshot.step not in ref.steps and values not in [plain(v) for v in ref.steps.values()]:
        return f"final checkpoint values {snapshot.values!r} are no superstep of the reference"
    if node not in snapshot.next:
        return f"the stopped node {node!r} is not due to run again (next={snapshot.next})"
    step = snapshot.step + 1
    for write in snapshot.pending_writes:
        w_node, key, value = write[0], write[1], write[2]
        expected = [_written(v, key) for (n, s, _t), v in ref.returns.items()
                    if n == w_node and s == step]
        if expected and all(e is not _ANY and plain(e) != plain(value) for e in expected):
            return (f"pending write {w_node}.{key}={value!r} is not what {w_node} wrote in the "
                    f"reference ({expected!r})")
    kept = {write[0] for write in snapshot.pending_writes}
    for done, done_step, _task in finished:
        returned = ref.returns.get((done, done_step, _task))
        update = _update(returned)
        if done_step == step and done != node and done not in kept and \
                isinstance(update, Mapping) and update:
            return f"{done} finished before the cancel but its writes were not kept"
    return None


_ANY = object()


def _update(returned: Any) -> Any:
    return returned.update if isinstance(returned, Command) else returned


def plain(value: Any) -> Any:
    """`value` as the sweep compares it: messages reduced to what they say (type, content,
    tool calls, the call answered), since `add_messages` gives messages without an id a fresh
    random one on every run."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if hasattr(value, "type") and hasattr(value, "content"):
        calls = [(c.get("name"), c.get("args"), c.get("id")) if isinstance(c, Mapping) else c
                 for c in getattr(value, "tool_calls", None) or ()]
        return ("message", value.type, plain(value.content), calls,
                getattr(value, "tool_call_id", None))
    return value


def _written(returned: Any, key: str) -> Any:
    update = _update(returned)
    if isinstance(update, Mapping) and key in update:
        return update[key]
    return _ANY


def hooks(events: Sequence[RunEvent], reference_events: Sequence[RunEvent]) -> str | None:
    """Every cleanup hook ran exactly once and ended well; none ran in the reference run."""
    if any(e.phase == "cleanup" and "hook" in e.detail for e in reference_events):
        return "a cleanup hook ran in the uncancelled reference run"
    seen: dict[tuple[str | None, str], int] = {}
    for event in events:
        if event.phase != "cleanup" or "hook" not in event.detail:
            continue
        key = (event.node, str(event.detail["hook"]))
        seen[key] = seen.get(key, 0) + 1
        if event.detail.get("outcome") != "ok":
            return f"cleanup hook {key[1]} of {key[0]} ended {event.detail.get('outcome')}: " \
                   f"{event.detail.get('detail')}"
    twice = [k for k, n in seen.items() if n > 1]
    if twice:
        node, hook = twice[0]
        return f"cleanup hook {hook} of {node} ran {seen[twice[0]]} times"
    return None


def tool_calls(values: Any, can_go_on: bool) -> str | None:
    """No tool call in a messages list is left unanswered (the last AI message's may be, while
    the run can go on to answer them)."""
    if not isinstance(values, Mapping):
        return None
    for key, messages in values.items():
        if not isinstance(messages, list) or not messages or \
                not all(hasattr(m, "type") for m in messages):
            continue
        answered = {getattr(m, "tool_call_id", None) for m in messages if m.type == "tool"}
        asking = [i for i, m in enumerate(messages) if getattr(m, "tool_calls", None)]
        for i in asking:
            if i == asking[-1] and can_go_on:
                continue
            for call in messages[i].tool_calls:
                call_id = call.get("id") if isinstance(call, Mapping) else getattr(call, "id", None)
                if call_id not in answered:
                    return f"tool call {call_id!r} in {key!r} is never answered"
    return None


def resumed(output: Any, values: Any, ref: Reference) -> str | None:
    """The resumed run reached the reference's final state."""
    if plain(values) != plain(ref.values):
        return f"resumed state {values!r} is not the reference's {ref.values!r}"
    if plain(output) != plain(ref.output):
        return f"resumed output {output!r} is not the reference's {ref.output!r}"
    return None


__all__ = ["Reference", "checkpoint", "hooks", "phases", "plain", "resumed", "status",
           "tool_calls"]
