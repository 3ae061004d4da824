"""Map-reduce with `Send`, branches joined by list edges, and conflicting parallel writes."""

import operator
from typing import Annotated, TypedDict

import pytest

from ._support import Lib, aoutcome, history, outcome, snapshot, thread


class MapReduce(TypedDict):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]
    best: str


class Item(TypedDict):
    subject: str
    index: int


def build_map_reduce(lib: Lib, *, async_worker: bool = False):
    """The docs' map-reduce: a conditional edge sends one `Send` per subject to `write`."""

    def fan_out(state: MapReduce) -> list:
        return [
            lib.Send("write", {"subject": subject, "index": index})
            for index, subject in enumerate(state["subjects"])
        ]

    def write(item: Item) -> dict:
        return {"jokes": [f"{item['index']}:{item['subject']}"]}

    async def awrite(item: Item) -> dict:
        return write(item)

    def pick(state: MapReduce) -> dict:
        return {"best": max(state["jokes"], key=len)}

    builder = lib.StateGraph(MapReduce)
    builder.add_node("write", awrite if async_worker else write)
    builder.add_node("pick", pick)
    builder.add_conditional_edges(lib.START, fan_out, ["write"])
    builder.add_edge("write", "pick")
    builder.add_edge("pick", lib.END)
    return builder.compile()


SUBJECTS = ["cats", "dogs", "a", "elephants", "bees", "owls", "x", "lions", "y", "zebra", "ants"]


@pytest.mark.parametrize("count", [0, 1, 3, len(SUBJECTS)])
def test_send_map_reduce_folds_results_in_send_order(lib: Lib, lg: Lib, count: int) -> None:
    subjects = SUBJECTS[:count]

    def run(library: Lib) -> tuple[str, object]:
        return outcome(lambda: build_map_reduce(library).invoke({"subjects": subjects}))

    expected = run(lg)
    if count:
        assert expected[1]["jokes"] == [f"{i}:{s}" for i, s in enumerate(subjects)]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_send_map_reduce_with_async_worker_folds_in_send_order(lib: Lib, lg: Lib) -> None:
    expected = await build_map_reduce(lg, async_worker=True).ainvoke({"subjects": SUBJECTS})
    assert expected["jokes"] == [f"{i}:{s}" for i, s in enumerate(SUBJECTS)]
    assert expected["best"] == "3:elephants"
    got = await build_map_reduce(lib, async_worker=True).ainvoke({"subjects": SUBJECTS})
    assert got == expected


class Tally(TypedDict):
    items: list[int]
    squares: Annotated[list[int], operator.add]
    total: int


def build_send_from_node(lib: Lib, checkpointer=None):
    """A node returns `Command(goto=[Send, ...])`; the workers' results are folded in order."""

    def split(state: Tally):
        return lib.Command(goto=[lib.Send("square", n) for n in state["items"]])

    def square(n: int) -> dict:
        return {"squares": [n * n]}

    def add_up(state: Tally) -> dict:
        return {"total": sum(state["squares"])}

    builder = lib.StateGraph(Tally)
    builder.add_node("split", split)
    builder.add_node("square", square)
    builder.add_node("add_up", add_up)
    builder.add_edge(lib.START, "split")
    builder.add_edge("square", "add_up")
    return builder.compile(checkpointer=checkpointer)


def test_command_goto_sends_fan_out_and_fold_in_send_order(lib: Lib, lg: Lib) -> None:
    items = [5, 3, 9, 1, 7]
    expected = build_send_from_node(lg).invoke({"items": items})
    assert expected == {"items": items, "squares": [25, 9, 81, 1, 49], "total": 165}
    assert build_send_from_node(lib).invoke({"items": items}) == expected


class Branches(TypedDict):
    log: Annotated[list[str], operator.add]


def _log(name: str, *, async_node: bool = False):
    def node(state: Branches) -> dict:
        return {"log": [f"{name}<{len(state['log'])}"]}

    async def anode(state: Branches) -> dict:
        return node(state)

    return anode if async_node else node


def build_join(lib: Lib, *, async_nodes: bool = False):
    """`a -> a2` and `b` run in parallel; `c` waits for both `a2` and `b` (a list edge)."""
    builder = lib.StateGraph(Branches)
    for name in ("a", "a2", "b", "c"):
        builder.add_node(name, _log(name, async_node=async_nodes))
    builder.add_edge(lib.START, "a")
    builder.add_edge(lib.START, "b")
    builder.add_edge("a", "a2")
    builder.add_edge(["a2", "b"], "c")
    builder.add_edge("c", lib.END)
    return builder.compile()


def test_list_edge_waits_for_branches_of_different_lengths(lib: Lib, lg: Lib) -> None:
    expected = build_join(lg).invoke({"log": []})
    # `c` runs once, after `a2`: it sees all four earlier entries.
    assert expected == {"log": ["a<0", "b<0", "a2<2", "c<3"]}
    assert build_join(lib).invoke({"log": []}) == expected


@pytest.mark.anyio
async def test_list_edge_with_async_nodes_waits_for_both_branches(lib: Lib, lg: Lib) -> None:
    expected = await build_join(lg, async_nodes=True).ainvoke({"log": []})
    assert expected["log"][-1] == "c<3"
    assert await build_join(lib, async_nodes=True).ainvoke({"log": []}) == expected


def test_list_edge_waiting_node_runs_in_superstep_after_last_branch(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        return list(build_join(library).stream({"log": []}, stream_mode="values"))

    expected = run(lg)
    assert [len(values["log"]) for values in expected] == [0, 2, 3, 4]
    assert run(lib) == expected


def test_plain_edges_from_both_branches_run_the_target_twice(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Branches)
        for name in ("a", "a2", "b", "c"):
            builder.add_node(name, _log(name))
        builder.add_edge(library.START, "a")
        builder.add_edge(library.START, "b")
        builder.add_edge("a", "a2")
        builder.add_edge("a2", "c")
        builder.add_edge("b", "c")
        return builder.compile().invoke({"log": []})

    expected = run(lg)
    assert expected == {"log": ["a<0", "b<0", "a2<2", "c<2", "c<4"]}
    assert run(lib) == expected


def test_parallel_writes_are_applied_in_node_name_order(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Branches)
        names = ["zeta", "alpha", "mid", "beta"]
        for name in names:
            builder.add_node(name, _log(name))
            builder.add_edge(library.START, name)
        return builder.compile().invoke({"log": []})

    expected = run(lg)
    assert expected == {"log": ["alpha<0", "beta<0", "mid<0", "zeta<0"]}
    assert run(lib) == expected


class Plain(TypedDict):
    value: str
    other: str


def _conflicting(lib: Lib, *, same_value: bool = False):
    def left(state: Plain) -> dict:
        return {"value": "left"}

    def right(state: Plain) -> dict:
        return {"value": "left" if same_value else "right"}

    builder = lib.StateGraph(Plain)
    builder.add_node("left", left)
    builder.add_node("right", right)
    builder.add_edge(lib.START, "left")
    builder.add_edge(lib.START, "right")
    return builder.compile()


@pytest.mark.parametrize("same_value", [False, True])
def test_two_parallel_writes_to_a_plain_key_raise_invalid_update(
    lib: Lib, lg: Lib, same_value: bool
) -> None:
    expected = outcome(lambda: _conflicting(lg, same_value=same_value).invoke({"value": "x"}))
    assert expected == ("raised", "InvalidUpdateError")
    with pytest.raises(lib.InvalidUpdateError):
        _conflicting(lib, same_value=same_value).invoke({"value": "x"})


@pytest.mark.anyio
async def test_two_parallel_writes_to_a_plain_key_raise_invalid_update_async(
    lib: Lib, lg: Lib
) -> None:
    expected = await aoutcome(lambda: _conflicting(lg).ainvoke({"value": "x"}))
    assert expected == ("raised", "InvalidUpdateError")
    with pytest.raises(lib.InvalidUpdateError):
        await _conflicting(lib).ainvoke({"value": "x"})


def test_parallel_writes_to_different_plain_keys_both_apply(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Plain)
        builder.add_node("one", lambda _s: {"value": "v"})
        builder.add_node("two", lambda _s: {"other": "o"})
        builder.add_edge(library.START, "one")
        builder.add_edge(library.START, "two")
        return builder.compile().invoke({"value": "", "other": ""})

    expected = run(lg)
    assert expected == {"value": "v", "other": "o"}
    assert run(lib) == expected


def _merge(left: dict, right: dict) -> dict:
    return {**left, **right}


class Scores(TypedDict):
    names: list[str]
    scores: Annotated[dict[str, int], _merge]
    visited: Annotated[list[str], operator.add]


def test_send_results_fold_with_a_custom_reducer_and_mix_with_plain_names(
    lib: Lib, lg: Lib
) -> None:
    def run(library: Lib) -> dict:
        def route(state: Scores) -> list:
            return [*(library.Send("score", name) for name in state["names"]), "audit"]

        builder = library.StateGraph(Scores)
        builder.add_node("start", lambda s: {"visited": ["start"]})
        builder.add_node("score", lambda name: {"scores": {name: len(name)}, "visited": [name]})
        builder.add_node("audit", lambda s: {"visited": [f"audit:{len(s['scores'])}"]})
        builder.add_edge(library.START, "start")
        builder.add_conditional_edges("start", route, ["score", "audit"])
        return builder.compile().invoke({"names": ["bo", "alice", "cy"], "scores": {}})

    expected = run(lg)
    assert expected["scores"] == {"bo": 2, "alice": 5, "cy": 2}
    # The plain-edge task ("audit") comes first, then the Sends in the order they were made.
    assert expected["visited"] == ["start", "audit:0", "bo", "alice", "cy"]
    assert run(lib) == expected


def test_send_workers_can_send_again_in_the_next_superstep(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        def split(state: Tally) -> list:
            return [library.Send("halve", n) for n in state["items"]]

        def halve(n: int):
            if n > 1:
                return library.Command(
                    goto=[library.Send("halve", n // 2)], update={"squares": [n]}
                )
            return {"squares": [n]}

        builder = library.StateGraph(Tally)
        builder.add_node("halve", halve)
        builder.add_conditional_edges(library.START, split, ["halve"])
        return builder.compile().invoke({"items": [8, 3]})

    expected = run(lg)
    assert expected["squares"] == [8, 3, 4, 1, 2, 1]
    assert run(lib) == expected


def test_send_map_reduce_with_a_checkpointer_records_the_sends(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Tally)
        builder.add_node("square", lambda n: {"squares": [n * n]})
        builder.add_conditional_edges(
            library.START, lambda s: [library.Send("square", n) for n in s["items"]], ["square"]
        )
        graph = builder.compile(checkpointer=library.InMemorySaver())
        result = graph.invoke({"items": [3, 1, 2]}, thread("sends"))
        return result, history(graph.get_state_history(thread("sends")))

    expected = run(lg)
    assert expected[0] == {"items": [3, 1, 2], "squares": [9, 1, 4]}
    assert [(h["step"], h["next"]) for h in expected[1]] == [
        (1, ()),
        (0, ("square", "square", "square")),
        (-1, ("__start__",)),
    ]
    assert run(lib) == expected


def test_command_goto_sends_with_a_checkpointer_fold_in_send_order(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        graph = build_send_from_node(library, checkpointer=library.InMemorySaver())
        return graph.invoke({"items": [4, 2]}, thread("goto-sends"))

    expected = run(lg)
    assert expected == {"items": [4, 2], "squares": [16, 4], "total": 20}
    assert run(lib) == expected


def test_interrupt_before_a_send_target_pauses_all_its_sends(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Tally)
        builder.add_node("square", lambda n: {"squares": [n * n]})
        builder.add_conditional_edges(
            library.START, lambda s: [library.Send("square", n) for n in s["items"]], ["square"]
        )
        graph = builder.compile(checkpointer=library.InMemorySaver(), interrupt_before=["square"])
        first = graph.invoke({"items": [5, 6]}, thread("paused-sends"))
        paused = snapshot(graph.get_state(thread("paused-sends")))
        return first, paused, graph.invoke(None, thread("paused-sends"))

    expected = run(lg)
    assert expected[1]["next"] == ("square", "square")
    assert expected[2]["squares"] == [25, 36]
    assert run(lib) == expected
