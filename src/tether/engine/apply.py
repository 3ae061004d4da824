"""Committing a superstep: every write of the step applied at once, in a fixed order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from tether.channels.base import MISSING, BaseChannel
from tether.engine.spec import Write
from tether.engine.task import Task
from tether.errors import InvalidUpdateError


def group_writes(tasks: Iterable[Task]) -> dict[str, list[Any]]:
    """The writes of finished tasks per channel, in LangGraph's order (by task path)."""
    ordered = sorted(tasks, key=lambda t: t.sort_key)
    grouped: dict[str, list[Any]] = {}
    for task in ordered:
        if task.writes:
            _group_into(grouped, task.writes)
    return grouped


def group_one(writes: Iterable[Write]) -> dict[str, list[Any]]:
    """`group_writes` of a single task's `writes` (the input step's: no task to make for it)."""
    grouped: dict[str, list[Any]] = {}
    _group_into(grouped, writes)
    return grouped


def _group_into(grouped: dict[str, list[Any]], writes: Iterable[Write]) -> None:
    for channel, value in writes:
        bucket = grouped.get(channel)
        if bucket is None:
            grouped[channel] = [value]
        else:
            bucket.append(value)


def apply_grouped(channels: Mapping[str, BaseChannel], grouped: Mapping[str, list[Any]],
                  live: Iterable[str]) -> set[str]:
    """Apply grouped writes, and clear the one-step triggers of the previous step.

    Args:
        live: trigger channels that were available before this step; those not written again
            are cleared (an edge fires once).

    Returns:
        The channels whose value changed.
    """
    updated: set[str] = set()
    for channel, values in grouped.items():
        target = channels.get(channel)
        if target is None:
            raise InvalidUpdateError(f"write to unknown channel {channel!r}")
        if target.update(values):
            updated.add(channel)
    for channel in live:
        if channel not in grouped and channels[channel].update(()):
            updated.add(channel)
    return updated


def refresh_values(channels: Mapping[str, BaseChannel], values: MutableMapping[str, Any],
                   state_keys: Iterable[str], changed: Iterable[str]) -> None:
    """Bring the state dict in line with the channels that changed.

    Keys keep the schema's order, as LangGraph's output does: a key that appears for the first
    time makes the dict be rebuilt in that order (rare: once per key per run).
    """
    keys = state_keys if isinstance(state_keys, (frozenset, set)) else frozenset(state_keys)
    appeared = False
    for key in changed:
        if key in keys:
            value = channels[key].checkpoint()
            if value is MISSING:
                values.pop(key, None)
            else:
                if key not in values:
                    appeared = True
                values[key] = value
    if appeared and len(values) > 1:
        ordered = {k: values[k] for k in channels if k in values}
        values.clear()
        values.update(ordered)


def preview(channels: Mapping[str, BaseChannel], values: Mapping[str, Any],
            state_keys: frozenset[str], writes: Iterable[Write]) -> dict[str, Any]:
    """The state as it would be with only `writes` applied (what a conditional edge sees).

    The channels themselves are left untouched.
    """
    grouped: dict[str, list[Any]] = {}
    for channel, value in writes:
        if channel in state_keys:
            grouped.setdefault(channel, []).append(value)
    if not grouped:
        return dict(values)
    out = dict(values)
    for key, items in grouped.items():
        scratch = channels[key].copy()
        scratch.update(items)
        value = scratch.checkpoint()
        if value is MISSING:
            out.pop(key, None)
        else:
            out[key] = value
    return out
