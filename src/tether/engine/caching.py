"""Caching of task results (`CachePolicy`): a node's writes, or a call's return value, kept in a
cache (`tether.cache`) by their input, so that a later task with the same input reuses them
instead of running. Nothing is cached without a cache given to the graph (`compile(cache=...)`,
`entrypoint(cache=...)`), as in LangGraph.

Keys are LangGraph's: the namespace `("__pregel_ns_writes", <function path>[, <node>])` and a
hash of what the policy's `key_func` makes of the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from tether.engine.spec import Write
from tether.engine.task import Task

CACHE_NS_WRITES = "__pregel_ns_writes"
"""The first part of the namespace of every cached result (LangGraph's)."""


def identifier(func: Any) -> str:
    """The path a function's cached results are filed under: its module and qualified name
    (`__dynamic__` for one that has none)."""
    target = getattr(func, "__func__", func)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if module is None or qualname is None:
        return "__dynamic__"
    return f"{module}.{qualname}"


def _policy(task: Task, default: Any) -> Any:
    if task.parent is not None:
        spec = task.spec
        return (spec.cache if spec is not None else None) or default
    return task.node.cache


def _key(task: Task, policy: Any) -> tuple[tuple[str, ...], str]:
    if task.parent is not None:
        args, kwargs = task.input
        made = policy.key_func(*args, **kwargs)
        ns: tuple[str, ...] = (CACHE_NS_WRITES, task.spec.cache_ns)
    else:
        made = policy.key_func(task.input)
        ns = (CACHE_NS_WRITES, *task.node.cache_ns)
    raw = made.encode() if isinstance(made, str) else bytes(made)
    return ns, hashlib.sha256(raw).hexdigest()


def _cacheable(tasks: Sequence[Task], default: Any) -> list[tuple[Task, Any, Any]]:
    out = []
    for task in tasks:
        policy = _policy(task, default)
        if policy is not None:
            out.append((task, policy, _key(task, policy)))
    return out


def _hit(task: Task, writes: list[Write]) -> None:
    task.writes, task.outcome, task.cached = list(writes), "done", True


async def recall(cache: Any, tasks: Sequence[Task], default: Any = None) -> None:
    """Give each task whose input is cached its cached writes (it is then not run).

    Cancellation:
        One cache read; safe to retry.
    """
    wanted = _cacheable(tasks, default)
    if not wanted:
        return
    found = await cache.aget([key for _t, _p, key in wanted])
    for task, _, key in wanted:
        if key in found:
            _hit(task, found[key])


async def keep(cache: Any, tasks: Sequence[Task], default: Any = None) -> None:
    """Cache the writes of the tasks that ran to the end (not those served from the cache).

    Cancellation:
        One cache write; an entry cut short is simply missing next time.
    """
    done = [t for t in tasks if t.outcome == "done" and not t.cached and t.writes is not None]
    wanted = _cacheable(done, default)
    if wanted:
        await cache.aset({key: (task.writes, policy.ttl) for task, policy, key in wanted})


def recall_sync(cache: Any, task: Task, default: Any = None) -> bool:
    """`recall` for one call run by a thread; True on a hit."""
    wanted = _cacheable([task], default)
    if not wanted:
        return False
    found = cache.get([wanted[0][2]])
    if wanted[0][2] not in found:
        return False
    _hit(task, found[wanted[0][2]])
    return True


def keep_sync(cache: Any, task: Task, default: Any = None) -> None:
    """`keep` for one call run by a thread."""
    if task.outcome != "done" or task.cached or task.writes is None:
        return
    wanted = _cacheable([task], default)
    if wanted:
        _task, policy, key = wanted[0]
        cache.set({key: (task.writes, policy.ttl)})


__all__ = ["CACHE_NS_WRITES", "identifier", "keep", "keep_sync", "recall", "recall_sync"]
