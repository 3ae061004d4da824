"""Loop detection beyond counting steps: the same node seeing the same state again and again, or
steps that change nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ormsgpack

from tether.engine.task import PULL, Task
from tether.errors import ConfigError
from tether.types import CancelReason

LOOP_KEYS = frozenset({"max_repeats", "no_progress_steps", "fields", "enabled"})
DEFAULT_NO_PROGRESS = 100


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """How loops are detected.

    Attributes:
        max_repeats: cancel when one node sees the same state fingerprint more than this many
            times (None: off; it costs a hash of the state per task).
        no_progress_steps: cancel after this many supersteps in a row that change no state key
            (cheap; on by default at 100).
        fields: the state keys that make the fingerprint (None: all of them).
    """

    max_repeats: int | None = None
    no_progress_steps: int | None = DEFAULT_NO_PROGRESS
    fields: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, *layers: Mapping[str, Any] | bool | None) -> LoopSettings | None:
        """Merge settings (later ones win); `False` turns detection off.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        merged: dict[str, Any] = {}
        for layer in layers:
            if layer is False:
                return None
            if layer is None or layer is True:
                continue
            for key, value in layer.items():
                if key not in LOOP_KEYS:
                    raise ConfigError(f"unknown loop_detection key {key!r}; known: "
                                      f"{sorted(LOOP_KEYS)}")
                merged[key] = value
        if merged.pop("enabled", True) is False:
            return None
        for key in ("max_repeats", "no_progress_steps"):
            value = merged.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"loop_detection {key} must be a positive integer")
        if merged.get("fields") is not None:
            merged["fields"] = tuple(merged["fields"])
        return cls(**merged)


def digest(value: Any) -> bytes:
    """A short digest of one value."""
    packed = ormsgpack.packb(value, default=repr, option=ormsgpack.OPT_NON_STR_KEYS)
    return hashlib.blake2b(packed, digest_size=12).digest()


class Fingerprints:
    """Digests of node inputs, hashing each state value once while it stays the same object.

    State values that a step did not write keep their identity, so only what changed is hashed
    again; the cache keeps each value alive so that an id is never reused while cached.
    """

    def __init__(self, fields: tuple[str, ...] | None) -> None:
        self.fields = fields
        self._cache: dict[str, tuple[Any, bytes]] = {}
        self._labels: dict[str, bytes] = {}

    def of(self, value: Any) -> bytes:
        """The fingerprint of a node's input (of its chosen fields, when it is a mapping)."""
        if not isinstance(value, Mapping):
            return digest(value)
        keys = self.fields if self.fields is not None else tuple(value)
        parts = []
        for key in keys:
            item = value.get(key)
            cached = self._cache.get(key)
            if cached is not None and cached[0] is item:
                part = cached[1]
            else:
                part = digest(item)
                self._cache[key] = (item, part)
            label = self._labels.get(key)
            if label is None:
                label = self._labels[key] = f"{key}\x00".encode()
            parts.append(label + part)
        return hashlib.blake2b(b"".join(parts), digest_size=12).digest()


@dataclass
class LoopDetector:
    """Counts what each node has seen, and how long nothing has changed."""

    settings: LoopSettings
    seen: dict[tuple[str, bytes], list[int]] = field(default_factory=dict)
    still: list[int] = field(default_factory=list)
    prints: Fingerprints | None = None

    def before_step(self, step: int, tasks: Sequence[Task]) -> CancelReason | None:
        """Note each task's input; a node that saw the same input too often is a loop."""
        limit = self.settings.max_repeats
        if limit is None:
            return None
        if self.prints is None:
            self.prints = Fingerprints(self.settings.fields)
        for task in tasks:
            if task.path[0] == PULL:
                key = (task.name, self.prints.of(task.input))
            else:
                key = (task.name, b"send:" + digest(task.input))
            steps = self.seen.setdefault(key, [])
            steps.append(step)
            if len(steps) > limit:
                return CancelReason(
                    "loop", f"node '{task.name}' saw the same state {len(steps)} times",
                    "loop_detection",
                    evidence={"node": task.name, "repeats": len(steps), "steps": steps[-10:],
                              "limit": limit},
                )
        return None

    def after_commit(self, step: int, changed: frozenset[str]) -> CancelReason | None:
        """Count steps that change nothing."""
        limit = self.settings.no_progress_steps
        if limit is None:
            return None
        if changed:
            self.still.clear()
            return None
        self.still.append(step)
        if len(self.still) >= limit:
            return CancelReason(
                "loop", f"{len(self.still)} supersteps in a row changed no state",
                "loop_detection",
                evidence={"no_progress_steps": len(self.still), "steps": self.still[-10:],
                          "limit": limit},
            )
        return None
