"""Run configuration: the LangGraph-shaped `config` dict, validated once into a `RunConfig`, and
LangGraph's calls that read a running node's config, long-term store and stream writer
(`get_config`, `get_store`, `get_stream_writer`)."""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from tether import node_context
from tether.cancel.deadlines import coerce_timeout
from tether.constants import DEFAULT_CANCEL_GRACE, DEFAULT_CLEANUP_GRACE, DEFAULT_RECURSION_LIMIT
from tether.errors import ConfigError
from tether.types import Durability, MultitaskStrategy, StreamWriter


def _discard(_chunk: Any) -> None:
    return None


class RunnableConfig(TypedDict, total=False):
    """The config dict callers pass, as in LangGraph, plus tether's keys."""

    configurable: dict[str, Any]
    recursion_limit: int
    run_id: str | uuid.UUID
    timeout: float
    multitask_strategy: MultitaskStrategy
    durability: Durability
    cancel_grace: float
    cleanup_grace: float
    tags: list[str]
    metadata: dict[str, Any]
    callbacks: Any
    max_concurrency: int
    run_name: str
    budget: dict[str, Any]
    loop_detection: dict[str, Any] | bool
    idle_timeout: float
    priority: int


CONFIG_KEYS = frozenset(RunnableConfig.__annotations__)
DURABILITIES = ("sync", "async", "exit")
MULTITASK_STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """A validated config: what the runs layer and the engine read, never the raw dict."""

    raw: dict[str, Any]
    thread_id: str | None = None
    checkpoint_id: str | None = None
    checkpoint_ns: str = ""
    run_id: str | None = None
    recursion_limit: int = DEFAULT_RECURSION_LIMIT
    timeout: float | None = None
    multitask_strategy: MultitaskStrategy | None = None
    durability: Durability = "sync"
    cancel_grace: float = DEFAULT_CANCEL_GRACE
    cleanup_grace: float = DEFAULT_CLEANUP_GRACE
    max_concurrency: int | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    loop_detection: dict[str, Any] | bool | None = None
    idle_timeout: float | None = None
    priority: int = 0


def _suggest(key: str, options: frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, not {value!r}")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, uuid.UUID, int)):
        return str(value)
    raise ConfigError(f"{what} must be a string, not {type(value).__name__}")


def parse_config(config: Mapping[str, Any] | None) -> RunConfig:
    """Validate a caller's config.

    Raises:
        ConfigError: naming the key, for unknown keys and malformed values.
    """
    if config is None:
        return RunConfig(raw={})
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a dict, not {type(config).__name__}")
    for key in config:
        if key not in CONFIG_KEYS:
            raise ConfigError(f"unknown config key {key!r}{_suggest(str(key), CONFIG_KEYS)}")
    configurable = config.get("configurable") or {}
    if not isinstance(configurable, Mapping):
        raise ConfigError("config['configurable'] must be a dict")
    durability = config.get("durability", "sync")
    if durability not in DURABILITIES:
        raise ConfigError(f"durability must be one of {DURABILITIES}, not {durability!r}")
    strategy = config.get("multitask_strategy")
    if strategy is not None and strategy not in MULTITASK_STRATEGIES:
        raise ConfigError(
            f"multitask_strategy must be one of {MULTITASK_STRATEGIES}, not {strategy!r}"
        )
    budget = config.get("budget") or {}
    if not isinstance(budget, Mapping):
        raise ConfigError("config['budget'] must be a dict")
    priority = config.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(f"priority must be an integer, not {priority!r}")
    max_concurrency = config.get("max_concurrency")
    return RunConfig(
        raw=dict(config),
        thread_id=_opt_str(configurable.get("thread_id"), "configurable.thread_id"),
        checkpoint_id=_opt_str(configurable.get("checkpoint_id"), "configurable.checkpoint_id"),
        checkpoint_ns=str(configurable.get("checkpoint_ns") or ""),
        run_id=_opt_str(config.get("run_id"), "run_id"),
        recursion_limit=_positive_int(
            config.get("recursion_limit", DEFAULT_RECURSION_LIMIT), "recursion_limit"
        ),
        timeout=coerce_timeout(config.get("timeout"), "config['timeout']"),
        multitask_strategy=cast("MultitaskStrategy | None", strategy),
        durability=cast("Durability", durability),
        cancel_grace=_grace(config, "cancel_grace", DEFAULT_CANCEL_GRACE),
        cleanup_grace=_grace(config, "cleanup_grace", DEFAULT_CLEANUP_GRACE),
        max_concurrency=None
        if max_concurrency is None
        else _positive_int(max_concurrency, "max_concurrency"),
        budget=dict(budget),
        loop_detection=_loop_detection(config.get("loop_detection")),
        idle_timeout=coerce_timeout(config.get("idle_timeout"), "idle_timeout"),
        priority=priority,
    )


def _loop_detection(value: Any) -> dict[str, Any] | bool | None:
    if value is None or isinstance(value, (bool, Mapping)):
        return dict(value) if isinstance(value, Mapping) else value
    raise ConfigError("config['loop_detection'] must be a dict of settings, True or False")


def _grace(config: Mapping[str, Any], key: str, default: float) -> float:
    value = coerce_timeout(config.get(key, default), key)
    return default if value is None else value


def merge_configs(base: Mapping[str, Any] | None,
                  override: Mapping[str, Any] | None) -> dict[str, Any]:
    """`override` on top of `base`, merging `configurable` one level deep."""
    merged: dict[str, Any] = dict(base or {})
    for key, value in (override or {}).items():
        if key == "configurable" and isinstance(value, Mapping):
            merged["configurable"] = {**(merged.get("configurable") or {}), **value}
        else:
            merged[key] = value
    return merged


def get_config() -> dict[str, Any]:
    """The config of the run the calling node belongs to (LangGraph's `get_config`)."""
    ctx = node_context.current()
    if ctx is None:
        raise RuntimeError("get_config() called outside of a running node")
    return ctx.config


def get_store() -> Any:
    """The long-term store of the running node's graph (LangGraph's `get_store`): what the
    graph was compiled with (`compile(store=...)`), the parent's for a subgraph; None when it
    has none.

    Raises:
        RuntimeError: called outside of a running node.
    """
    ctx = node_context.current()
    if ctx is None:
        raise RuntimeError("get_store() called outside of a running node")
    return getattr(ctx.runtime, "store", None)


def get_stream_writer() -> StreamWriter:
    """A writer for `custom` stream chunks from the running node (a no-op outside one)."""
    ctx = node_context.current()
    return ctx.writer if ctx is not None else _discard


__all__ = [
    "RunConfig",
    "RunnableConfig",
    "get_config",
    "get_store",
    "get_stream_writer",
    "merge_configs",
    "parse_config",
]
