"""Caching by input (`CachePolicy`): a node's writes or a task's result reused for an input seen
before, shown as `cached` in the `updates` stream; nothing cached without a cache."""

import importlib
import operator
from typing import Annotated, Any, TypedDict

from ._support import Lib


class State(TypedDict):
    x: int
    log: Annotated[list, operator.add]


def _cache(lib: Lib) -> Any:
    return importlib.import_module(f"{lib.name}.cache.memory").InMemoryCache()


def build(lib: Lib, calls: list[int], *, cache: bool = True, key_func: Any = None) -> Any:
    def double(state: State) -> dict:
        calls.append(state["x"])
        return {"log": [state["x"] * 2]}

    policy = lib.types.CachePolicy(key_func=key_func) if key_func else lib.types.CachePolicy()
    builder = lib.StateGraph(State)
    builder.add_node("double", double, cache_policy=policy)
    builder.add_edge(lib.START, "double")
    return builder.compile(cache=_cache(lib) if cache else None)


def test_a_cached_node_runs_once_per_input_and_streams_cached(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        calls: list[int] = []
        graph = build(library, calls)
        chunks = [list(graph.stream({"x": x, "log": []}, stream_mode="updates"))
                  for x in (1, 1, 2, 2)]
        return [chunks, calls]

    expected = run(lg)
    assert expected[0][1] == [{"double": {"log": [2]}, "__metadata__": {"cached": True}}]
    assert expected[1] == [1, 2]
    assert run(lib) == expected


def test_a_key_function_decides_what_is_the_same_input(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        calls: list[int] = []
        graph = build(library, calls, key_func=lambda state: str(state["x"] % 2))
        results = [graph.invoke({"x": x, "log": []}) for x in (1, 3, 2)]
        return [results, calls]

    expected = run(lg)
    assert expected[1] == [1, 2]
    assert run(lib) == expected


def test_nothing_is_cached_without_a_cache(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        calls: list[int] = []
        graph = build(library, calls, cache=False)
        graph.invoke({"x": 1, "log": []})
        graph.invoke({"x": 1, "log": []})
        return calls

    expected = run(lg)
    assert expected == [1, 1]
    assert run(lib) == expected


def test_a_cached_task_of_an_entrypoint(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        func = library.func
        calls: list[int] = []

        @func.task(cache_policy=library.types.CachePolicy())
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        @func.entrypoint(cache=_cache(library))
        def squares(n: int) -> list[int]:
            return [square(i).result() for i in range(n)]

        return [list(squares.stream(2)), list(squares.stream(3)), calls]

    expected = run(lg)
    assert expected[1][0] == {"square": 0, "__metadata__": {"cached": True}}
    assert expected[2] == [0, 1, 2]
    assert run(lib) == expected


def test_a_task_cache_is_cleared_on_demand(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        func = library.func
        calls: list[int] = []
        cache = _cache(library)

        @func.task(cache_policy=library.types.CachePolicy())
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        @func.entrypoint(cache=cache)
        def one(n: int) -> int:
            return square(n).result()

        one.invoke(4)
        square.clear_cache(cache)
        one.invoke(4)
        return calls

    expected = run(lg)
    assert expected == [4, 4]
    assert run(lib) == expected
