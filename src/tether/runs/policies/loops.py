"""Loop detection beyond counting steps: the same node seeing the same state again and again, or
steps that change nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ormsgpack
from ormsgpack import packb

from tether.engine.hooks import StateView
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
            times (None: off; it costs a fingerprint of each task's input).
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
        if not merged:  # the defaults: one shared (frozen) value, not one per run
            return _DEFAULT_SETTINGS
        if merged.get("fields") is not None:
            merged["fields"] = tuple(merged["fields"])
        return cls(**merged)


_DEFAULT_SETTINGS = LoopSettings()


_RAW = 16  # packed values shorter than a digest are their own digest (no hashing, no collision)
_PACK = ormsgpack.OPT_NON_STR_KEYS


def digest(value: Any) -> bytes:
    """A short digest of one value: its msgpack bytes when shorter than 16 bytes, else a 16-byte
    hash of them (the lengths differ, so the two kinds never meet)."""
    packed = ormsgpack.packb(value, default=repr, option=_PACK)
    if len(packed) < _RAW:
        return packed
    return hashlib.blake2b(packed, digest_size=_RAW).digest()


_PATCHED = 2  # a fingerprint of more keys than this is patched from one step to the next
_SHORT = 16  # strings shorter than this stand for themselves in a fingerprint
# The hash family of list digests (apart from every other digest): BLAKE2s, whose 64-byte
# block makes the digest of a list extended by one item cheaper than BLAKE2b's (~700 fewer
# instructions of ~6.8k per append and digest), with a person of its own (at most 8 bytes).
_LIST = b"t:list"


def _items(items: list[Any]) -> bytes:
    """The msgpack bytes of a list's items, one after another (its array header cut off)."""
    packed = ormsgpack.packb(items, default=repr, option=_PACK)
    count = len(items)
    return packed[1 if count < 16 else 3 if count < 0x10000 else 5:]

Fingerprint = bytes | tuple[str | int | bytes, ...]


class Fingerprints:
    """Fingerprints of node inputs, hashing each state value once while it stays the same object.

    A mapping's fingerprint is a flat tuple of its fields' names and values, where a value is
    itself when it is an int or a short str (equal ints and strs are equal values, and they
    never equal each other nor bytes) and otherwise its `digest`. A digest is computed once per
    value object: values that a step did not write keep their identity, so only what changed is
    hashed again; the cache keeps each value alive so that an id is never reused while cached.
    """

    def __init__(self, fields: tuple[str, ...] | None) -> None:
        self.fields = fields
        # The last fingerprint `of_state` made, kept as a list to be patched (its head, then
        # each key and its part), each key's index of its part, and the state and version it
        # was made from (`_state` None: none kept).
        self._parts: list[Any] = []
        self._index: dict[str, int] = {}
        self._state: StateView | None = None
        self._version = -1
        # key -> (the value last hashed, its digest).
        self._cache: dict[str, tuple[Any, bytes]] = {}
        # key -> (the list last hashed, its length then, the hash of its items): a list that
        # starts with that one (a reducer's appends, a growing message history) hashes only its
        # tail, unless that one changed length since (it grew in place: hashed afresh).
        self._lists: dict[str, tuple[list[Any], int, Any]] = {}

    def of_dict(self, value: dict[str, Any], head: str | None = None,
                state: StateView | None = None) -> tuple[str | int | bytes, ...]:
        """The fingerprint of a plain dict, every field of it (the usual node input); with
        `head`, that name first (the loop detector's key in one flat tuple). `state`: the
        state `value` was read from, which tells which of its lists the last commit made by
        appending to the list hashed before, and which keys its last change wrote: a written
        value is hashed again even when it is the object hashed before (a list or dict a node
        changed in place and wrote back is not taken for unchanged)."""
        cache = self._cache
        written = state.written if state is not None else None
        parts: list[str | int | bytes] = [] if head is None else [head]
        for key, item in value.items():
            kind = type(item)
            if kind is int or (kind is str and len(item) < _SHORT):
                parts += (key, item)
                continue
            cached = cache.get(key)
            if cached is None or cached[0] is not item or (written is not None
                                                           and key in written):
                cached = cache[key] = (item, self._list(key, item, state) if kind is list
                                       else digest(item))
            parts += (key, cached[1])
        return tuple(parts)

    def of_state(self, given: dict[str, Any], head: str,
                 state: StateView) -> tuple[str | int | bytes, ...]:
        """`of_dict(given, head, state)` for an input that is a copy of `state.values` (the
        same keys in the same order, the same value objects): patched from the fingerprint made
        at the state's previous version, on the keys its last change wrote (no loop over the
        others); made whole when that one is not kept, or a key appeared or went.

        A written value is hashed again even when it is the object hashed before (a list a
        node grew in place and wrote back is extended, not taken for unchanged)."""
        version = state.version
        written = state.written
        parts = self._parts
        if version == self._version + 1 and state is self._state and written is not None:
            index = self._index
            for key in written:
                if key not in index:
                    if key in given:  # a key appeared: made whole (the order may change)
                        break
                    continue  # no state key
                if key not in given:  # a key went
                    break
                at = index[key]
                item = given[key]
                kind = type(item)
                if kind is int or (kind is str and len(item) < _SHORT):
                    parts[at] = item
                    continue
                # (The identity cache of `of_dict` is left as it is: it keeps the objects
                # it holds alive, and this one is no longer the value there.)
                parts[at] = self._list(key, item, state) if kind is list else digest(item)
            else:
                self._version = version
                parts[0] = head
                return tuple(parts)
        made_whole = self.of_dict(given, head, state)
        self._parts = list(made_whole)
        self._index = {key: 2 * at for at, key in enumerate(given, 1)}
        self._state, self._version = state, version
        return made_whole

    def _list(self, key: str, items: list[Any], state: StateView | None) -> bytes:
        """The digest of a list under `key`: the hash of its items' bytes, extended from the
        list last hashed there when `state` says its last commit made `items` by appending to
        that very list, and that one kept the length it was hashed at; else hashed afresh.

        Only the state's word is taken for it, never a comparison: equal items need not pack
        alike (`0 == False`, `1 == 1.0`). The hash of the last list is extended in place (its
        entry is replaced here, and nothing else holds it), and a tail of one item is packed
        alone (its bytes are the same as inside a list): no copy and no list on the usual
        step, one append."""
        lists = self._lists
        last = lists.get(key)
        if last is not None and state is not None:
            old, length, hasher = last
            made = state.appended(key, items)
            # `old` is alive here, so no other object has its id.
            if made is not None and made[0] == id(old) and len(old) == length:
                grown = made[1]
                if grown == 1:
                    hasher.update(packb(items[length], default=repr, option=_PACK))
                elif grown:
                    hasher.update(_items(items[length:]))
                lists[key] = (items, length + grown, hasher)
                result: bytes = hasher.digest()
                return result
        fresh = hashlib.blake2s(_items(items), digest_size=_RAW, person=_LIST)
        lists[key] = (items, len(items), fresh)
        return fresh.digest()

    def of(self, value: Any) -> Fingerprint:
        """The fingerprint of a node's input (of its chosen fields, when it is a mapping)."""
        fields = self.fields
        if fields is None and type(value) is dict:
            return self.of_dict(value)
        if not isinstance(value, Mapping):
            return digest(value)
        return self.of_dict({key: value.get(key) for key in (value if fields is None
                                                            else fields)})


def _of_ints(name: str, given: dict[str, Any], size: int) -> tuple[Any, ...] | None:
    """The key `of_dict` makes for an input of one or two ints (a counter, an index: they
    stand for themselves), or None for any other input.

    The items are unpacked, not iterated: a key made this way costs about a third of one made
    with `map`/`chain` iterators, which each step would otherwise pay (wall clock, bench
    `policies-loop`)."""
    if size == 1:
        ((key, value),) = given.items()
        return (name, key, value) if type(value) is int else None
    if size == 2:
        (key, value), (other, more) = given.items()
        if type(value) is int and type(more) is int:
            return (name, key, value, other, more)
    return None


class LoopDetector:
    """Counts what each node has seen, and how long nothing has changed."""

    def __init__(self, settings: LoopSettings) -> None:
        self.settings = settings
        # (node, input fingerprint) -> the step it was first seen in, or, once seen again,
        # every step it was seen in: most inputs are seen once, and an int costs no list. A
        # plain dict's key is one flat tuple: the node's name, then its fingerprint's parts.
        self.seen: dict[tuple[Any, ...], int | list[int]] = {}
        self.still: list[int] = []
        # Made only when repeats are watched (the default settings do not).
        self.prints = Fingerprints(settings.fields) if settings.max_repeats is not None \
            else None
        self._plain = settings.fields is None  # plain dicts are fingerprinted whole

    def before_step(self, step: int, tasks: Sequence[Task],
                    state: StateView | None = None) -> CancelReason | None:
        """Note each task's input; a node that saw the same input too often is a loop.

        `state`: the state the step starts from (its lists say what the last commit appended
        to them; None: nothing is known of that)."""
        prints = self.prints
        if prints is None:
            return None
        if len(tasks) == 1:
            return self.before_task(step, tasks[0], state)
        return self._tasks(step, tasks, state)

    def _tasks(self, step: int, tasks: Sequence[Task],
               state: StateView | None) -> CancelReason | None:
        """`before_step` for any step, task by task."""
        prints = self.prints
        assert prints is not None
        seen, plain = self.seen, self._plain
        for task in tasks:
            name, given = task.node.name, task.input
            key: tuple[Any, ...]
            if task.path[0] != PULL:
                key = (name, b"send:" + digest(given))
            elif plain and type(given) is dict:
                key = prints.of_dict(given, name, state)
            else:
                made = prints.of(given)
                key = (name, *made) if type(made) is tuple else (name, made)
            size = len(seen)
            steps = seen.setdefault(key, step)
            if len(seen) != size:  # the usual input: seen for the first time
                continue
            reason = self._again(key, steps, step)
            if reason is not None:
                return reason
        return None

    def before_task(self, step: int, task: Task,
                    state: StateView | None = None) -> CancelReason | None:
        """`before_step` for a step of one task (the usual step), while repeats are watched.

        An input that is a copy of the whole state (no input schema, no managed value) is
        fingerprinted from what the last commit wrote, unless it has so few keys that making
        it whole costs less."""
        prints = self.prints
        assert prints is not None  # (this is asked only while repeats are watched)
        given = task.input
        if type(given) is dict and self._plain and task.path[0] == PULL:
            node = task.node
            size = len(given)
            if size > _PATCHED:
                usual = (prints.of_state(given, node.name, state)
                         if state is not None and node.reader is None and state.plain_inputs
                         else prints.of_dict(given, node.name, state))
            else:
                usual = _of_ints(node.name, given, size) or prints.of_dict(given, node.name,
                                                                            state)
            seen = self.seen
            if usual in seen:
                return self._again(usual, seen[usual], step)
            seen[usual] = step
            return None
        return self._tasks(step, (task,), state)

    def _again(self, key: tuple[Any, ...], steps: int | list[int],
               step: int) -> CancelReason | None:
        """`key` (a node's name, then its input's fingerprint) seen again in `step`, after
        `steps`: a loop once seen more than the limit allows."""
        if isinstance(steps, int):
            steps = self.seen[key] = [steps]
        steps.append(step)
        limit = self.settings.max_repeats
        if limit is not None and len(steps) > limit:
            name = key[0]
            return CancelReason(
                "loop", f"node '{name}' saw the same state {len(steps)} times",
                "loop_detection",
                evidence={"node": name, "repeats": len(steps), "steps": steps[-10:],
                          "limit": limit},
            )
        return None

    def after_commit(self, step: int, progressed: bool) -> CancelReason | None:
        """Count steps that change nothing (`progressed`: the step changed a state value)."""
        limit = self.settings.no_progress_steps
        if limit is None:
            return None
        if progressed:
            if self.still:
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
