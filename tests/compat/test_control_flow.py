"""Loops, conditional edges, sequences, entry/finish points and `Command` routing."""

import operator
from typing import Annotated, Literal, TypedDict

import pytest

from tether.errors import StrictnessWarning

from ._support import Lib, aoutcome, history, outcome


class Counter(TypedDict):
    n: int
    trail: Annotated[list[int], operator.add]


def build_counter(lib: Lib, target: int, *, async_node: bool = False, checkpointer=None):
    """`inc` loops on itself through a conditional edge until `n` reaches `target`."""

    def inc(state: Counter) -> dict:
        return {"n": state["n"] + 1, "trail": [state["n"]]}

    async def ainc(state: Counter) -> dict:
        return inc(state)

    def route(state: Counter) -> str:
        return lib.END if state["n"] >= target else "inc"

    builder = lib.StateGraph(Counter)
    builder.add_node("inc", ainc if async_node else inc)
    builder.add_edge(lib.START, "inc")
    builder.add_conditional_edges("inc", route)
    return builder.compile(checkpointer=checkpointer)


def test_counter_loop_stops_at_target(lib: Lib, lg: Lib) -> None:
    expected = build_counter(lg, 5).invoke({"n": 0, "trail": []})
    assert expected == {"n": 5, "trail": [0, 1, 2, 3, 4]}
    assert build_counter(lib, 5).invoke({"n": 0, "trail": []}) == expected


@pytest.mark.anyio
async def test_counter_loop_with_async_node_stops_at_target(lib: Lib, lg: Lib) -> None:
    expected = await build_counter(lg, 4, async_node=True).ainvoke({"n": 1})
    assert expected == {"n": 4, "trail": [1, 2, 3]}
    assert await build_counter(lib, 4, async_node=True).ainvoke({"n": 1}) == expected


@pytest.mark.anyio
async def test_counter_loop_with_sync_node_under_ainvoke_stops_at_target(lib: Lib, lg: Lib) -> None:
    expected = await build_counter(lg, 3).ainvoke({"n": 0})
    assert expected == {"n": 3, "trail": [0, 1, 2]}
    assert await build_counter(lib, 3).ainvoke({"n": 0}) == expected


def _limit_outcomes(
    lib: Lib, start: int, target: int, saver: bool
) -> list[tuple[int, tuple[str, object]]]:
    graph = build_counter(lib, target, checkpointer=lib.InMemorySaver() if saver else None)

    def run(limit: int) -> dict:
        # A new thread per attempt: each run starts from fresh input.
        config = {"recursion_limit": limit, "configurable": {"thread_id": f"limit-{limit}"}}
        return graph.invoke({"n": start}, config)

    return [(limit, outcome(lambda limit=limit: run(limit))) for limit in range(target - start + 3)]


@pytest.mark.parametrize("saver", [False, True], ids=["no-checkpointer", "checkpointer"])
@pytest.mark.parametrize(("start", "target"), [(0, 5), (4, 5), (0, 1), (0, 12)])
def test_recursion_limit_raises_below_exactly_the_same_limit(
    lib: Lib, lg: Lib, start: int, target: int, saver: bool
) -> None:
    expected = _limit_outcomes(lg, start, target, saver)
    steps = target - start
    # LangGraph: a run of `steps` supersteps needs recursion_limit > steps; 0 is a ValueError.
    assert expected[0] == (0, ("raised", "ValueError"))
    assert expected[steps] == (steps, ("raised", "GraphRecursionError"))
    assert expected[steps + 1][1][0] == "ok"
    assert _limit_outcomes(lib, start, target, saver) == expected


def test_recursion_limit_error_is_the_library_graph_recursion_error(lib: Lib) -> None:
    with pytest.raises(lib.GraphRecursionError):
        build_counter(lib, 5).invoke({"n": 0}, {"recursion_limit": 5})


@pytest.mark.anyio
async def test_recursion_limit_boundary_is_the_same_under_ainvoke(lib: Lib, lg: Lib) -> None:
    async def outcomes(library: Lib) -> list[tuple[str, object]]:
        graph = build_counter(library, 6, async_node=True)
        return [
            await aoutcome(lambda limit=limit: graph.ainvoke({"n": 0}, {"recursion_limit": limit}))
            for limit in range(1, 9)
        ]

    expected = await outcomes(lg)
    assert [kind for kind, _ in expected] == ["raised"] * 6 + ["ok"] * 2
    assert await outcomes(lib) == expected


class Fan(TypedDict):
    rounds: int
    log: Annotated[list[str], operator.add]


def build_parallel_loop(lib: Lib, rounds: int):
    """Each round runs `a` and `b` in one superstep, then `join`, then loops back."""

    def a(state: Fan) -> dict:
        return {"log": ["a"]}

    def b(state: Fan) -> dict:
        return {"log": ["b"]}

    def join(state: Fan) -> dict:
        return {"rounds": state["rounds"] + 1, "log": ["join"]}

    def again(state: Fan) -> list[str] | str:
        return lib.END if state["rounds"] >= rounds else ["a", "b"]

    builder = lib.StateGraph(Fan)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_node("join", join)
    builder.add_edge(lib.START, "a")
    builder.add_edge(lib.START, "b")
    builder.add_edge(["a", "b"], "join")
    builder.add_conditional_edges("join", again, ["a", "b", lib.END])
    return builder.compile()


def test_recursion_limit_counts_supersteps_not_tasks(lib: Lib, lg: Lib) -> None:
    def outcomes(library: Lib) -> list[tuple[str, object]]:
        graph = build_parallel_loop(library, 3)
        return [
            outcome(lambda limit=limit: graph.invoke({"rounds": 0}, {"recursion_limit": limit}))
            for limit in range(1, 9)
        ]

    expected = outcomes(lg)
    # 3 rounds x 2 supersteps = 6 supersteps, 9 tasks.
    assert [kind for kind, _ in expected] == ["raised"] * 6 + ["ok"] * 2
    assert expected[-1][1]["log"] == ["a", "b", "join"] * 3
    assert outcomes(lib) == expected


class Text(TypedDict):
    text: str


def _append(suffix: str):
    def node(state: Text) -> dict:
        return {"text": state["text"] + suffix}

    node.__name__ = f"add_{suffix}"
    return node


def test_add_sequence_of_functions_runs_in_order(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Text)
        builder.add_sequence([_append("x"), _append("y"), _append("z")])
        builder.add_edge(library.START, "add_x")
        return builder.compile().invoke({"text": ">"})

    expected = run(lg)
    assert expected == {"text": ">xyz"}
    assert run(lib) == expected


def test_add_sequence_of_named_pairs_runs_in_order(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Text)
        builder.add_sequence([("first", _append("1")), ("second", _append("2"))])
        builder.add_edge(library.START, "first")
        builder.add_edge("second", library.END)
        return builder.compile().invoke({"text": ""})

    expected = run(lg)
    assert expected == {"text": "12"}
    assert run(lib) == expected


def test_set_entry_point_and_set_finish_point_bound_the_run(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Text)
        builder.add_node("one", _append("1"))
        builder.add_node("two", _append("2"))
        builder.set_entry_point("one")
        builder.add_edge("one", "two")
        builder.set_finish_point("two")
        return builder.compile().invoke({"text": "s"})

    expected = run(lg)
    assert expected == {"text": "s12"}
    assert run(lib) == expected


def _first_letter(state: Text) -> str:
    return state["text"][0]


def _first_word(state: Text) -> str:
    return state["text"].split(".")[0]


def _routed_graph(lib: Lib, route, path_map):
    """`start` appends "." and routes by `route`, through `path_map`."""
    builder = lib.StateGraph(Text)
    builder.add_node("start", _append("."))
    builder.add_node("left", _append("L"))
    builder.add_node("right", _append("R"))
    builder.add_edge(lib.START, "start")
    builder.add_conditional_edges("start", route, path_map)
    builder.add_edge("left", lib.END)
    builder.add_edge("right", lib.END)
    return builder.compile()


@pytest.mark.parametrize("text", ["left", "right"])
def test_path_map_as_list_routes_to_returned_node(lib: Lib, lg: Lib, text: str) -> None:
    def run(library: Lib) -> dict:
        return _routed_graph(library, _first_word, ["left", "right"]).invoke({"text": text})

    expected = run(lg)
    assert expected == {"text": f"{text}.{text[0].upper()}"}
    assert run(lib) == expected


@pytest.mark.parametrize(("text", "suffix"), [("lx", ".L"), ("rx", ".R"), ("ex", ".")])
def test_path_map_as_dict_translates_route_keys(lib: Lib, lg: Lib, text: str, suffix: str) -> None:
    def run(library: Lib) -> dict:
        path_map = {"l": "left", "r": "right", "e": library.END}
        return _routed_graph(library, _first_letter, path_map).invoke({"text": text})

    expected = run(lg)
    assert expected == {"text": text + suffix}
    assert run(lib) == expected


class Visits(TypedDict):
    seen: Annotated[list[str], operator.add]


def _visit(name: str):
    def node(state: Visits) -> dict:
        return {"seen": [name]}

    return node


@pytest.mark.parametrize("chosen", [["c", "b"], ["b"], ["d", "c", "b"], []])
def test_conditional_edge_returning_a_list_runs_all_named_nodes(
    lib: Lib, lg: Lib, chosen: list[str]
) -> None:
    def run(library: Lib) -> dict:
        builder = library.StateGraph(Visits)
        for name in "abcd":
            builder.add_node(name, _visit(name))
        builder.add_edge(library.START, "a")
        builder.add_conditional_edges("a", lambda _state: chosen, ["b", "c", "d"])
        return builder.compile().invoke({"seen": []})

    expected = run(lg)
    # Writes of one superstep are applied in node-name order, whatever order the route gave.
    assert expected == {"seen": ["a", *sorted(chosen)]}
    assert run(lib) == expected


class Routed(TypedDict):
    value: int
    path: Annotated[list[str], operator.add]


def build_command_graph(lib: Lib, *, async_nodes: bool = False):
    """`decide` returns `Command(goto=..., update=...)` and has no edges out (as in the docs)."""

    def decide(state: Routed) -> lib.Command[Literal["even", "odd"]]:
        goto = "even" if state["value"] % 2 == 0 else "odd"
        return lib.Command(goto=goto, update={"value": state["value"] * 10, "path": ["decide"]})

    def even(state: Routed) -> dict:
        return {"path": [f"even:{state['value']}"]}

    def odd(state: Routed) -> lib.Command[Literal["__end__"]]:
        return lib.Command(goto=lib.END, update={"path": [f"odd:{state['value']}"]})

    async def adecide(state: Routed) -> lib.Command[Literal["even", "odd"]]:
        return decide(state)

    builder = lib.StateGraph(Routed)
    builder.add_node("decide", adecide if async_nodes else decide)
    builder.add_node("even", even)
    builder.add_node("odd", odd)
    builder.add_edge(lib.START, "decide")
    builder.add_edge("even", lib.END)
    return builder.compile()


@pytest.mark.parametrize("value", [2, 3])
def test_command_goto_with_update_routes_and_writes(lib: Lib, lg: Lib, value: int) -> None:
    expected = build_command_graph(lg).invoke({"value": value})
    assert expected["path"] == ["decide", f"{'even' if value % 2 == 0 else 'odd'}:{value * 10}"]
    assert build_command_graph(lib).invoke({"value": value}) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("value", [4, 5])
async def test_command_goto_from_async_node_routes_and_writes(
    lib: Lib, lg: Lib, value: int
) -> None:
    expected = await build_command_graph(lg, async_nodes=True).ainvoke({"value": value})
    assert expected["value"] == value * 10
    assert await build_command_graph(lib, async_nodes=True).ainvoke({"value": value}) == expected


def test_command_goto_list_of_nodes_runs_them_in_one_superstep(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def fan(state: Visits) -> library.Command[Literal["c", "b"]]:
            return library.Command(goto=["c", "b"], update={"seen": ["fan"]})

        builder = library.StateGraph(Visits)
        builder.add_node("fan", fan)
        builder.add_node("b", _visit("b"))
        builder.add_node("c", _visit("c"))
        builder.add_edge(library.START, "fan")
        graph = builder.compile()
        updates = list(graph.stream({"seen": []}, stream_mode="updates"))
        # Updates of one superstep are emitted as tasks finish: compare them as a set.
        return [updates[0], sorted(updates[1:], key=str), graph.invoke({"seen": []})]

    expected = run(lg)
    assert expected == [
        {"fan": {"seen": ["fan"]}},
        [{"b": {"seen": ["b"]}}, {"c": {"seen": ["c"]}}],
        {"seen": ["fan", "b", "c"]},
    ]
    assert run(lib) == expected


def test_a_list_of_commands_and_updates_applies_all_and_follows_the_gotos(
        lib: Lib, lg: Lib) -> None:
    # What a ToolNode returns when some tools answered with a Command and others with a message.
    def run(library: Lib) -> list:
        def mixed(state: Visits) -> list:
            return [library.Command(update={"seen": ["command"]}, goto="b"), {"seen": ["dict"]}]

        def plain(state: Visits) -> list:
            return [{"seen": ["dict"]}]

        builder = library.StateGraph(Visits)
        builder.add_node("mixed", mixed)
        builder.add_node("b", _visit("b"))
        builder.add_edge(library.START, "mixed")
        ok = builder.compile().invoke({"seen": []})
        bad = library.StateGraph(Visits).add_node("plain", plain)
        refused = outcome(lambda: bad.add_edge(library.START, "plain").compile().invoke(
            {"seen": []}))
        return [ok, refused[0]]

    expected = run(lg)
    assert expected == [{"seen": ["command", "dict", "b"]}, "raised"]
    assert run(lib) == expected


def _shape(graph) -> tuple[list[str], list[tuple[str, str, bool]]]:
    drawable = graph.get_graph()
    edges = sorted((e.source, e.target, bool(e.conditional)) for e in drawable.edges)
    return sorted(drawable.nodes), edges


def test_get_graph_draws_command_destinations_from_the_return_annotation(lib: Lib, lg: Lib) -> None:
    expected = _shape(build_command_graph(lg))
    assert ("decide", "even", True) in expected[1]
    assert ("odd", "__end__", True) in expected[1]
    assert _shape(build_command_graph(lib)) == expected


def test_get_graph_draws_nodes_and_edges_of_a_loop_with_a_join(lib: Lib, lg: Lib) -> None:
    expected = _shape(build_parallel_loop(lg, 2))
    assert expected[0] == ["__end__", "__start__", "a", "b", "join"]
    assert _shape(build_parallel_loop(lib, 2)) == expected


def test_add_node_without_a_name_uses_the_function_name(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        def shout(state: Text) -> dict:
            return {"text": state["text"].upper()}

        builder = library.StateGraph(Text)
        builder.add_node(shout)
        builder.add_edge(library.START, "shout")
        return builder.compile().invoke({"text": "hey"})

    expected = run(lg)
    assert expected == {"text": "HEY"}
    assert run(lib) == expected


def test_graph_with_an_unreachable_node_compiles_and_runs(lib: Lib, lg: Lib) -> None:
    def run(library: Lib, **strict: bool) -> tuple:
        builder = library.StateGraph(Visits)
        builder.add_node("a", _visit("a"))
        builder.add_node("orphan", _visit("orphan"))
        builder.add_edge(library.START, "a")
        return outcome(lambda: builder.compile(**strict).invoke({"seen": []}))

    expected = run(lg)
    assert expected == ("ok", {"seen": ["a"]})
    if lib.name == "tether":
        # tether warns (once, naming the node) and runs it as LangGraph does; strict refuses.
        with pytest.warns(StrictnessWarning, match="`orphan` is not reachable from START"):
            assert run(lib) == expected
        assert run(lib, strict=True) == ("raised", "GraphCompileError")
    else:
        assert run(lib) == expected


def test_command_goto_as_graph_input_starts_at_the_named_node(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Visits)
        builder.add_node("a", _visit("a"))
        builder.add_node("b", _visit("b"))
        builder.add_edge(library.START, "a")
        builder.add_conditional_edges("a", lambda _s: library.END, ["b", library.END])
        graph = builder.compile(checkpointer=library.InMemorySaver())
        config = {"configurable": {"thread_id": "command-input"}}
        command = library.Command(update={"seen": ["input"]}, goto="b")
        return outcome(lambda: graph.invoke(command, config)), history(
            graph.get_state_history(config)
        )

    expected = run(lg)
    # LangGraph applies the update twice (as the input checkpoint and as the START task's write),
    # then runs `a` (START's edge) and `b` (the goto) in the same superstep.
    assert expected[0] == ("ok", {"seen": ["input", "input", "a", "b"]})
    assert [h["next"] for h in expected[1]] == [(), ("a", "b"), ("__start__",)]
    got = run(lib)
    if lib.name == "tether":
        # Deliberate difference (docs/compat.md): the update is applied once.
        assert got[0] == ("ok", {"seen": ["input", "a", "b"]})
        assert [h["next"] for h in got[1]] == [h["next"] for h in expected[1]]
    else:
        assert got == expected


def _go_to(name: str, lib: Lib):
    """A routing helper, as programs factor them out: the node itself never names `Command`."""
    return lib.Command(goto=name, update={"seen": [f"to {name}"]})


def test_node_returning_a_command_from_a_helper_compiles_and_routes(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        def a(state: Visits):
            return _go_to("b", library)

        builder = library.StateGraph(Visits)
        builder.add_node("a", a)
        builder.add_node("b", _visit("b"))
        builder.add_edge(library.START, "a")
        return outcome(lambda: builder.compile().invoke({"seen": []}))

    expected = run(lg)
    assert expected == ("ok", {"seen": ["to b", "b"]})
    assert run(lib) == expected
