"""Node caches (memory, SQLite), each through its sync and async methods: hits, misses, ttl,
namespaces; and `CachePolicy` keys."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.cache.base import BaseCache
from tether.cache.memory import InMemoryCache
from tether.cache.sqlite import SqliteCache
from tether.errors import SerializationError
from tether.types import CachePolicy, Send, default_cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
         ) -> Iterator[Callable[[], BaseCache[Any]]]:
    made: list[BaseCache[Any]] = []

    def new() -> BaseCache[Any]:
        cache: BaseCache[Any] = (InMemoryCache(clock=clock) if request.param == "memory"
                                 else SqliteCache(path=tmp_path / "cache.db", clock=clock))
        made.append(cache)
        return cache

    yield new
    for cache in made:
        close = getattr(cache, "close", None)
        if close is not None:
            close()


class Calls:
    """A cache called sync, or async on one event loop."""

    def __init__(self, cache: BaseCache[Any], runner: asyncio.Runner | None) -> None:
        self.cache, self.runner = cache, runner

    def __getattr__(self, name: str) -> Any:
        if self.runner is None:
            return getattr(self.cache, name)
        method, runner = getattr(self.cache, "a" + name), self.runner
        return lambda *args: runner.run(method(*args))


@pytest.fixture(params=["sync", "async"])
def cache(request: pytest.FixtureRequest, make: Callable[[], BaseCache[Any]]
          ) -> Iterator[Calls]:
    if request.param == "sync":
        yield Calls(make(), None)
        return
    with asyncio.Runner() as runner:
        yield Calls(make(), runner)


NS = ("__pregel_ns_writes", "node")


def test_a_set_value_is_a_hit_and_other_keys_miss(cache: Calls) -> None:
    value = [("answer", {"n": 1, "items": (1, 2)}), ("branch:to:x", None), ("s", Send("x", 1))]
    cache.set({(NS, "k1"): (value, None)})
    assert cache.get([(NS, "k1"), (NS, "k2"), (("other",), "k1")]) == {(NS, "k1"): value}
    assert cache.get([]) == {}


def test_a_hit_is_a_copy(cache: Calls) -> None:
    cache.set({(NS, "k"): ({"list": [1]}, None)})
    got = cache.get([(NS, "k")])[(NS, "k")]
    got["list"].append(2)
    assert cache.get([(NS, "k")])[(NS, "k")] == {"list": [1]}


def test_an_entry_expires_after_its_ttl_in_seconds(cache: Calls, clock: Clock) -> None:
    cache.set({(NS, "short"): ("a", 10), (NS, "long"): ("b", None)})
    clock.now += 9.9
    assert set(cache.get([(NS, "short"), (NS, "long")])) == {(NS, "short"), (NS, "long")}
    clock.now += 0.1
    assert cache.get([(NS, "short"), (NS, "long")]) == {(NS, "long"): "b"}
    cache.set({(NS, "short"): ("c", 10)})
    assert cache.get([(NS, "short")]) == {(NS, "short"): "c"}


def test_clear_by_namespace_or_all(cache: Calls) -> None:
    other = ("__pregel_ns_writes", "other")
    cache.set({(NS, "a"): (1, None), (other, "b"): (2, None)})
    cache.clear([NS])
    assert cache.get([(NS, "a"), (other, "b")]) == {(other, "b"): 2}
    cache.clear()
    assert cache.get([(other, "b")]) == {}


def test_a_value_that_cannot_be_serialized_is_refused_and_nothing_stored(cache: Calls) -> None:
    with pytest.raises(SerializationError, match="cache entry 'bad'"):
        cache.set({(NS, "good"): (1, None), (NS, "bad"): (object(), None)})
    assert cache.get([(NS, "good")]) == {}


def test_a_sqlite_cache_outlives_its_handle_and_shares_a_file_with_checkpoints(
        tmp_path: Path) -> None:
    from tether.checkpoint.sqlite import SqliteSaver

    path = tmp_path / "app.db"
    saver = SqliteSaver(path)
    first = SqliteCache(path=path)
    first.set({(NS, "k"): ({"v": 1}, None)})
    first.close()
    second = SqliteCache(path=str(path))
    assert second.get([(NS, "k")]) == {(NS, "k"): {"v": 1}}
    second.close()
    saver.close()


def test_cache_policy_has_langgraphs_fields_and_defaults() -> None:
    policy = CachePolicy(ttl=30)
    assert policy.ttl == 30 and policy.key_func is default_cache_key
    assert CachePolicy().ttl is None
    with pytest.raises(TypeError):
        CachePolicy(default_cache_key, 3)  # type: ignore[misc]  # keywords only
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.ttl = 1  # type: ignore[misc]


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_the_default_key_depends_on_the_input_not_on_its_order_or_process() -> None:
    a = {"b": [1, 2], "a": {"x", "y", "z"}, "p": Point(1, 2)}
    b = {"p": Point(1, 2), "a": {"z", "y", "x"}, "b": [1, 2]}
    assert default_cache_key(a) == default_cache_key(b)
    assert default_cache_key(a) != default_cache_key({**a, "b": [2, 1]})
    assert default_cache_key(1) != default_cache_key("1")
    code = ("from tether.types import default_cache_key;"
            "print(default_cache_key({'a': {'x', 'y', 'z'}, 'b': [1, 2]}))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60, env={"PYTHONHASHSEED": "123"}).stdout.strip()
    assert other == default_cache_key({"b": [1, 2], "a": {"z", "y", "x"}})


def test_langgraph_module_paths_for_caching() -> None:
    from tether.cache.base import BaseCache as Base
    from tether.cache.memory import InMemoryCache as Memory
    from tether.cache.sqlite import SqliteCache as Sqlite

    assert issubclass(Memory, Base) and issubclass(Sqlite, Base)
