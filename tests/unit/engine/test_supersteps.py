"""The superstep engine: ordering, concurrency, routing, retries, budgets and streams."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from tether.config import get_config, get_stream_writer
from tether.errors import ConfigError, GraphRecursionError, InvalidUpdateError, StrictnessWarning
from tether.graph import END, START, StateGraph
from tether.types import Command, RetryPolicy, Send


class L(TypedDict):
    log: Annotated[list[str], operator.add]


class S(TypedDict):
    n: int


def test_parallel_writes_apply_in_task_order_not_finish_order() -> None:
    async def slow(state: L) -> dict[str, list[str]]:
        await asyncio.sleep(0.03)
        return {"log": ["a"]}

    async def fast(state: L) -> dict[str, list[str]]:
        return {"log": ["b"]}

    b = StateGraph(L).add_node("a", slow).add_node("b", fast)
    b.add_edge(START, "a").add_edge(START, "b")
    assert asyncio.run(b.compile().ainvoke({"log": []})) == {"log": ["a", "b"]}


def test_sync_nodes_of_one_step_run_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(name: str) -> Any:
        def node(state: L) -> dict[str, list[str]]:
            barrier.wait()  # deadlocks unless both run at once
            return {"log": [name]}
        return node

    b = StateGraph(L).add_node("a", meet("a")).add_node("b", meet("b"))
    b.add_edge(START, "a").add_edge(START, "b")
    assert b.compile().invoke({"log": []}) == {"log": ["a", "b"]}


def test_lone_sync_node_runs_inline_under_invoke_and_on_a_worker_under_ainvoke() -> None:
    seen: list[str] = []

    def where(state: S) -> dict[str, int]:
        seen.append(threading.current_thread().name)
        return {"n": state["n"] + 1}

    graph = StateGraph(S).add_node("w", where).add_edge(START, "w").compile()
    graph.invoke({"n": 0})
    asyncio.run(graph.ainvoke({"n": 0}))
    assert seen == [threading.current_thread().name, "tether-thread"]


def test_node_returning_a_non_update_names_the_node() -> None:
    b = StateGraph(S).add_node("broken", lambda s: 5).add_edge(START, "broken")
    with pytest.raises(InvalidUpdateError, match="Node 'broken' returned int 5"):
        b.compile().invoke({"n": 0})


def test_node_returning_an_unknown_key_warns_once_and_strict_names_node_and_key() -> None:
    b = StateGraph(S).add_node("typo", lambda s: {"n": s["n"] + 1, "nn": 1})
    b.add_edge(START, "typo")
    graph = b.compile()
    with pytest.warns(StrictnessWarning, match="Node 'typo' returned unknown state key 'nn'"
                      ) as caught:
        assert graph.invoke({"n": 0}) == {"n": 1}  # the key is dropped, as LangGraph does
        assert graph.invoke({"n": 5}) == {"n": 6}
    assert len(caught) == 1  # once per node and key
    with pytest.raises(InvalidUpdateError, match="Node 'typo' returned unknown state key 'nn'"):
        b.compile(strict=True).invoke({"n": 0})


def test_two_writes_to_a_plain_key_in_one_step_fail() -> None:
    b = StateGraph(S).add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: {"n": 2})
    b.add_edge(START, "a").add_edge(START, "b")
    with pytest.raises(InvalidUpdateError, match="At key 'n': Can receive only one value"):
        b.compile().invoke({"n": 0})


def test_send_delivers_a_private_input_per_task() -> None:
    class M(TypedDict):
        items: list[int]
        out: Annotated[list[int], operator.add]

    def fan(state: M) -> list[Send]:
        return [Send("sq", {"x": i}) for i in state["items"]]

    b = StateGraph(M).add_node("sq", lambda p: {"out": [p["x"] ** 2]})
    b.add_conditional_edges(START, fan)
    assert b.compile().invoke({"items": [3, 1, 2], "out": []})["out"] == [9, 1, 4]


def test_command_routes_and_updates_together() -> None:
    def decide(state: S) -> Command:  # type: ignore[type-arg]
        return Command(update={"n": state["n"] * 10}, goto="done")

    b = StateGraph(S).add_node("decide", decide).add_node("done", lambda s: {"n": s["n"] + 1})
    b.add_edge(START, "decide")
    assert b.compile().invoke({"n": 2}) == {"n": 21}


def test_join_edge_waits_for_branches_of_different_lengths() -> None:
    b = StateGraph(L)
    for name in ("a", "a2", "b", "join"):
        b.add_node(name, lambda s, name=name: {"log": [name]})
    b.add_edge(START, "a").add_edge("a", "a2").add_edge(START, "b")
    b.add_edge(["a2", "b"], "join")
    assert b.compile().invoke({"log": []}) == {"log": ["a", "b", "a2", "join"]}


def test_retry_policy_retries_matching_errors_then_succeeds() -> None:
    attempts: list[int] = []

    def flaky(state: S) -> dict[str, int]:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return {"n": len(attempts)}

    policy = RetryPolicy(initial_interval=0.001, jitter=False, max_attempts=3)
    b = StateGraph(S).add_node("f", flaky, retry_policy=policy).add_edge(START, "f")
    assert b.compile().invoke({"n": 0}) == {"n": 3}


def test_retry_policy_does_not_retry_programming_errors() -> None:
    attempts: list[int] = []

    def wrong(state: S) -> dict[str, int]:
        attempts.append(1)
        raise ValueError("bug")

    policy = RetryPolicy(initial_interval=0.001, jitter=False)
    b = StateGraph(S).add_node("w", wrong, retry=policy).add_edge(START, "w")
    with pytest.raises(ValueError, match="bug"):
        b.compile().invoke({"n": 0})
    assert len(attempts) == 1


def loop_graph(until: int) -> Any:
    b = StateGraph(S).add_node("inc", lambda s: {"n": s["n"] + 1}).add_edge(START, "inc")
    b.add_conditional_edges("inc", lambda s: "inc" if s["n"] < until else END)
    return b.compile()


@pytest.mark.parametrize(("needed", "limit", "ok"), [(3, 3, False), (3, 4, True), (9, 10, True),
                                                     (10, 10, False)])
def test_recursion_limit_counts_the_input_step_for_fresh_input(needed: int, limit: int,
                                                               ok: bool) -> None:
    graph = loop_graph(needed)
    if ok:
        assert graph.invoke({"n": 0}, {"recursion_limit": limit}) == {"n": needed}
    else:
        with pytest.raises(GraphRecursionError, match=f"Recursion limit of {limit} reached"):
            graph.invoke({"n": 0}, {"recursion_limit": limit})


def test_unknown_config_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'timout'; did you mean 'timeout'"):
        loop_graph(1).invoke({"n": 0}, {"timout": 3})


@pytest.mark.parametrize(("config", "message"), [
    ({"timeout": -1}, "positive number of seconds"),
    ({"recursion_limit": 0}, "recursion_limit must be a positive integer"),
    ({"durability": "never"}, "durability must be one of"),
])
def test_malformed_config_values_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        loop_graph(1).invoke({"n": 0}, config)


def test_streams_of_several_modes_come_as_mode_chunk_pairs() -> None:
    def talk(state: S) -> dict[str, int]:
        get_stream_writer()({"said": state["n"]})
        return {"n": state["n"] + 1}

    b = StateGraph(S).add_node("talk", talk).add_edge(START, "talk")
    chunks = list(b.compile().stream({"n": 1}, stream_mode=["custom", "updates", "values"]))
    assert chunks == [("values", {"n": 1}), ("custom", {"said": 1}),
                      ("updates", {"talk": {"n": 2}}), ("values", {"n": 2})]


def test_custom_chunks_from_a_worker_thread_arrive_before_the_update() -> None:
    def talk(state: L) -> dict[str, list[str]]:
        for i in range(3):
            get_stream_writer()(i)
        return {"log": ["done"]}

    b = StateGraph(L).add_node("a", talk).add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a").add_edge(START, "b")
    chunks = list(b.compile().stream({"log": []}, stream_mode=["custom", "updates"]))
    custom = [c for m, c in chunks if m == "custom"]
    assert custom == [0, 1, 2]
    assert chunks.index(("custom", 2)) < chunks.index(("updates", {"a": {"log": ["done"]}}))


def test_nodes_see_langgraph_metadata_in_their_config() -> None:
    seen: dict[str, Any] = {}

    def look(state: S, config: dict[str, Any]) -> dict[str, int]:
        seen.update(config["metadata"])
        seen["same"] = get_config() == config
        return {}

    b = StateGraph(S).add_node("look", look).add_edge(START, "look")
    b.compile().invoke({"n": 0}, {"metadata": {"who": "me"}})
    assert seen["langgraph_node"] == "look"
    assert seen["langgraph_step"] == 1
    assert seen["who"] == "me"
    assert seen["same"] is True


def test_subgraph_as_node_returns_only_parent_keys() -> None:
    class Child(TypedDict):
        n: int
        scratch: str

    inner = StateGraph(Child).add_node("work", lambda s: {"n": s["n"] * 2, "scratch": "x"})
    inner.add_edge(START, "work")
    outer = StateGraph(S).add_node("child", inner.compile()).add_edge(START, "child")
    assert outer.compile().invoke({"n": 4}) == {"n": 8}


def test_subgraph_chunks_carry_their_namespace() -> None:
    inner = StateGraph(S).add_node("work", lambda s: {"n": s["n"] + 1}).add_edge(START, "work")
    outer = StateGraph(S).add_node("child", inner.compile()).add_edge(START, "child")
    chunks = list(outer.compile().stream({"n": 0}, stream_mode="updates", subgraphs=True))
    assert chunks[-1] == ((), {"child": {"n": 1}})
    namespace, update = chunks[0]
    assert namespace[0].startswith("child:") and update == {"work": {"n": 1}}


def test_input_and_output_schemas_filter_what_goes_in_and_comes_out() -> None:
    class In(TypedDict):
        question: str

    class Out(TypedDict):
        answer: str

    class All(In, Out):
        notes: str

    b = StateGraph(All, input_schema=In, output_schema=Out)
    b.add_node("think", lambda s: {"notes": s["question"].upper()})
    b.add_node("say", lambda s: {"answer": s["notes"] + "!"})
    b.add_edge(START, "think").add_edge("think", "say")
    assert b.compile().invoke({"question": "hi", "notes": "ignored?"}) == {"answer": "HI!"}


def test_a_parallel_steps_updates_stream_in_task_order_every_time() -> None:
    """Instant nodes of one step start in LangGraph's order (by name) and stream in it, run
    after run (LangGraph's threads swap two now and then under load; tether's do not)."""
    from typing import TypedDict

    class Log(TypedDict):
        log: Annotated[list, operator.add]

    builder = StateGraph(Log)
    for name in ["e", "d", "c", "b", "a"]:
        builder.add_node(name, lambda _s, name=name: {"log": [name]})
        builder.add_edge(START, name)
    graph = builder.compile()
    orders = {tuple(next(iter(chunk)) for chunk in graph.stream({"log": []}))
              for _ in range(30)}
    assert orders == {("a", "b", "c", "d", "e")}
