"""Managed values: `RemainingSteps` and `IsLastStep` keys of a state schema, filled in by the
engine from the recursion budget, never stored, never part of the output."""

import operator
from typing import Annotated, Any, TypedDict

import pytest

from ._support import Lib, outcome, snapshot, thread


def build_countdown(lib: Lib, *, checkpointer: bool = False) -> Any:
    """A node that loops on itself, logging what the budget says, until two steps remain."""

    class State(TypedDict):
        log: Annotated[list, operator.add]
        remaining_steps: lib.managed.RemainingSteps  # type: ignore[name-defined]
        last: lib.managed.IsLastStep  # type: ignore[name-defined]

    def step(state: State) -> dict:
        return {"log": [[state["remaining_steps"], state["last"]]]}

    def route(state: State) -> str:
        return lib.END if state["remaining_steps"] <= 2 or state["last"] else "step"

    builder = lib.StateGraph(State)
    builder.add_node("step", step)
    builder.add_edge(lib.START, "step")
    builder.add_conditional_edges("step", route)
    return builder.compile(checkpointer=lib.InMemorySaver() if checkpointer else None)


@pytest.mark.parametrize("limit", [3, 6, 25])
def test_remaining_steps_counts_down_to_the_recursion_limit(lib: Lib, lg: Lib, limit: int) -> None:
    def run(library: Lib) -> Any:
        return build_countdown(library).invoke({"log": []}, {"recursion_limit": limit})

    expected = run(lg)
    assert expected["log"][0] == [limit - 1, limit == 2]
    assert "remaining_steps" not in expected
    assert run(lib) == expected


def test_is_last_step_is_true_on_the_last_step_the_limit_allows(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        class State(TypedDict):
            log: Annotated[list, operator.add]
            last: library.managed.IsLastStep  # type: ignore[name-defined]

        def step(state: State) -> dict:
            return {"log": [state["last"]]}

        builder = library.StateGraph(State)
        builder.add_node("step", step)
        builder.add_edge(library.START, "step")
        builder.add_conditional_edges("step", lambda s: library.END if s["last"] else "step")
        return builder.compile().invoke({"log": []}, {"recursion_limit": 4})

    expected = run(lg)
    assert expected == {"log": [False, False, True]}
    assert run(lib) == expected


def test_managed_values_on_a_thread_count_from_each_run(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_countdown(library, checkpointer=True)
        first = graph.invoke({"log": []}, {**thread("t"), "recursion_limit": 6})
        second = graph.invoke({"log": []}, {**thread("t"), "recursion_limit": 4})
        return [first, second, snapshot(graph.get_state(thread("t")))]

    expected = run(lg)
    assert expected[1]["log"][-2:] == [[3, False], [2, False]]
    assert "remaining_steps" not in expected[2]["values"]
    assert run(lib) == expected


def test_managed_keys_in_the_input_are_ignored(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        graph = build_countdown(library)
        return graph.invoke({"log": [], "remaining_steps": 100}, {"recursion_limit": 4})

    expected = run(lg)
    assert expected == {"log": [[3, False], [2, False]]}
    assert run(lib) == expected


def test_managed_values_in_a_stream_of_values(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_countdown(library)
        return list(graph.stream({"log": []}, {"recursion_limit": 4}, stream_mode="values"))

    expected = run(lg)
    assert expected[0] == {"log": []}
    assert run(lib) == expected


def test_a_node_that_reads_remaining_steps_through_its_input_schema(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        class State(TypedDict):
            log: Annotated[list, operator.add]

        class Budget(TypedDict):
            log: list
            remaining_steps: library.managed.RemainingSteps  # type: ignore[name-defined]

        def look(state: Budget) -> dict:
            return {"log": [state["remaining_steps"]]}

        builder = library.StateGraph(State)
        builder.add_node("look", look, input_schema=Budget)
        builder.add_edge(library.START, "look")
        return outcome(lambda: builder.compile().invoke({"log": []}, {"recursion_limit": 10}))

    expected = run(lg)
    assert expected == ("ok", {"log": [9]})
    assert run(lib) == expected
