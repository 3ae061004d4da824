"""Stream modes `values`, `updates`, `custom`, `debug` and lists of modes, sync and async."""

import operator
from typing import Annotated, Literal, TypedDict

import anyio
import pytest

from ._support import Lib, normalise


class Steps(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def build_steps(lib: Lib, *, async_nodes: bool = False, **compile_kwargs):
    """`a` (which writes two custom chunks) then `b` then a conditional edge to the end."""

    def a(state: Steps) -> dict:
        writer = lib.get_stream_writer()
        writer({"progress": "a", "n": state["n"]})
        writer("plain text")
        return {"n": state["n"] + 1, "log": ["a"]}

    def b(state: Steps) -> dict:
        lib.get_stream_writer()({"progress": "b"})
        return {"log": [f"b{state['n']}"]}

    async def a_async(state: Steps) -> dict:
        return a(state)

    async def b_async(state: Steps) -> dict:
        return b(state)

    builder = lib.StateGraph(Steps)
    builder.add_node("a", a_async if async_nodes else a)
    builder.add_node("b", b_async if async_nodes else b)
    builder.add_edge(lib.START, "a")
    builder.add_edge("a", "b")
    builder.add_conditional_edges("b", lambda s: lib.END if s["n"] > 1 else "a")
    return builder.compile(**compile_kwargs)


MODES = ["values", "updates", "custom", ["values", "updates"], ["updates", "custom", "values"]]


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_stream_mode_chunks_match_in_order(lib: Lib, lg: Lib, mode) -> None:
    def run(library: Lib) -> list:
        return list(build_steps(library).stream({"n": 0}, stream_mode=mode))

    expected = run(lg)
    if mode == "updates":
        assert expected == [
            {"a": {"n": 1, "log": ["a"]}},
            {"b": {"log": ["b1"]}},
            {"a": {"n": 2, "log": ["a"]}},
            {"b": {"log": ["b2"]}},
        ]
    if mode == "custom":
        assert expected[:3] == [{"progress": "a", "n": 0}, "plain text", {"progress": "b"}]
    if isinstance(mode, list):
        assert all(isinstance(chunk, tuple) and chunk[0] in mode for chunk in expected)
    assert run(lib) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES, ids=str)
async def test_astream_with_async_nodes_matches_in_order(lib: Lib, lg: Lib, mode) -> None:
    async def run(library: Lib) -> list:
        graph = build_steps(library, async_nodes=True)
        return [chunk async for chunk in graph.astream({"n": 0}, stream_mode=mode)]

    expected = await run(lg)
    assert len(expected) >= 4
    assert await run(lib) == expected


@pytest.mark.anyio
async def test_astream_with_sync_nodes_matches_in_order(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> list:
        graph = build_steps(library)
        modes = ["updates", "custom"]
        return [chunk async for chunk in graph.astream({"n": 0}, stream_mode=modes)]

    expected = await run(lg)
    assert expected[0] == ("custom", {"progress": "a", "n": 0})
    assert await run(lib) == expected


def test_stream_without_mode_yields_updates(lib: Lib, lg: Lib) -> None:
    expected = list(build_steps(lg).stream({"n": 0}))
    assert expected == list(build_steps(lg).stream({"n": 0}, stream_mode="updates"))
    assert list(build_steps(lib).stream({"n": 0})) == expected


def test_values_stream_last_chunk_equals_invoke_result(lib: Lib, lg: Lib) -> None:
    expected = list(build_steps(lg).stream({"n": 0}, stream_mode="values"))
    assert expected[-1] == build_steps(lg).invoke({"n": 0})
    got = list(build_steps(lib).stream({"n": 0}, stream_mode="values"))
    assert got == expected
    assert got[-1] == build_steps(lib).invoke({"n": 0})


def test_custom_writes_are_discarded_when_not_streamed(lib: Lib, lg: Lib) -> None:
    expected = build_steps(lg).invoke({"n": 0})
    assert expected == {"n": 2, "log": ["a", "b1", "a", "b2"]}
    assert build_steps(lib).invoke({"n": 0}) == expected


class Counted(TypedDict):
    n: int


def test_runtime_stream_writer_writes_custom_chunks_from_the_running_node(
        lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def first(state: Counted, runtime: library.Runtime) -> dict:  # type: ignore[name-defined]
            runtime.stream_writer({"from": "first", "n": state["n"]})
            return {"n": state["n"] + 1}

        def second(state: Counted, runtime: library.Runtime) -> dict:  # type: ignore[name-defined]
            runtime.stream_writer(f"second saw {state['n']}")
            return {"n": state["n"] * 10}

        builder = library.StateGraph(Counted)
        builder.add_node("first", first).add_node("second", second)
        builder.add_edge(library.START, "first").add_edge("first", "second")
        return list(builder.compile().stream({"n": 1}, stream_mode="custom"))

    expected = run(lg)
    assert expected == [{"from": "first", "n": 1}, "second saw 2"]
    assert run(lib) == expected


def _debug_view(event: dict) -> tuple:
    """A debug event without ids, timestamps and internal channel names (`triggers`)."""
    payload = event["payload"]
    if event["type"] == "checkpoint":
        return (
            "checkpoint",
            event["step"],
            payload["values"],
            {key: payload["metadata"][key] for key in ("source", "step")},
            list(payload["next"]),
            [(task["name"], list(task["interrupts"])) for task in payload["tasks"]],
            payload["parent_config"] is None,
        )
    if event["type"] == "task":
        return ("task", event["step"], payload["name"], payload["input"])
    return (
        event["type"],
        event["step"],
        payload["name"],
        payload["result"],
        payload["error"],
        list(payload["interrupts"]),
    )


def test_debug_stream_reports_tasks_and_results(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        events = list(build_steps(library).stream({"n": 0}, stream_mode="debug"))
        assert all(set(event) == {"type", "timestamp", "step", "payload"} for event in events)
        return [_debug_view(event) for event in events]

    expected = run(lg)
    assert expected[:2] == [
        ("task", 1, "a", {"n": 0, "log": []}),
        ("task_result", 1, "a", {"n": 1, "log": ["a"]}, None, []),
    ]
    assert len(expected) == 8
    assert run(lib) == expected


def test_debug_stream_with_checkpointer_reports_checkpoints(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_steps(library, checkpointer=library.InMemorySaver())
        config = {"configurable": {"thread_id": "debug"}}
        return [_debug_view(e) for e in graph.stream({"n": 0}, config, stream_mode="debug")]

    expected = run(lg)
    assert [event[:2] for event in expected if event[0] == "checkpoint"] == [
        ("checkpoint", step) for step in range(-1, 5)
    ]
    assert expected[1] == (
        "checkpoint",
        0,
        {"n": 0, "log": []},
        {"source": "loop", "step": 0},
        ["a"],
        [("a", [])],
        False,
    )
    assert run(lib) == expected


def test_debug_events_normalise_to_equal_structures(lib: Lib, lg: Lib) -> None:
    """The whole event, ids and timestamps aside, minus the internal `triggers` field."""

    def run(library: Lib) -> list:
        events = normalise(list(build_steps(library).stream({"n": 0}, stream_mode="debug")))
        for event in events:
            event["payload"].pop("triggers", None)
        return events

    expected = run(lg)
    assert expected[0]["timestamp"] == "<random>"
    assert expected[0]["payload"]["id"] == "<random>"
    assert run(lib) == expected


def _error_view(error) -> tuple | None:
    return None if error is None else (type(error).__name__, str(error))


def test_debug_stream_reports_a_failing_task_with_its_exception(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def fail(state: Steps) -> dict:
            raise ValueError("bad step")

        builder = library.StateGraph(Steps)
        builder.add_node("fail", fail)
        builder.add_edge(library.START, "fail")
        events = []
        with pytest.raises(ValueError, match="bad step"):
            for event in builder.compile().stream({"n": 0}, stream_mode="debug"):
                payload = event["payload"]
                events.append((event["type"], payload["name"], payload.get("result")))
                if event["type"] == "task_result":
                    events.append(_error_view(payload["error"]))
        return events

    expected = run(lg)
    assert expected == [
        ("task", "fail", None),
        ("task_result", "fail", {}),
        ("ValueError", "bad step"),
    ]
    assert run(lib) == expected


class Answer(TypedDict):
    log: Annotated[list[str], operator.add]


def test_debug_stream_of_an_interrupt_and_its_resume(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def ask(state: Answer) -> dict:
            return {"log": [library.interrupt("why?")]}

        builder = library.StateGraph(Answer)
        builder.add_node("ask", ask)
        builder.add_edge(library.START, "ask")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        config = {"configurable": {"thread_id": "debug-interrupt"}}
        first = list(graph.stream({"log": []}, config, stream_mode="debug"))
        resumed = list(graph.stream(library.Command(resume="because"), config, stream_mode="debug"))
        return [[_debug_view(event) for event in events] for events in (first, resumed)]

    expected = run(lg)
    interrupted = expected[0][-1]
    assert interrupted[:4] == ("task_result", 1, "ask", {})
    # LangGraph reports the interrupts of a task result as plain dicts.
    assert [i["value"] for i in interrupted[5]] == ["why?"]
    assert expected[1][0][:2] == ("checkpoint", 0)
    assert expected[1][-1][2] == {"log": ["because"]}
    assert normalise(run(lib)) == normalise(expected)


def test_debug_stream_of_a_resume_after_interrupt_after(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_steps(library, checkpointer=library.InMemorySaver(), interrupt_after=["a"])
        config = {"configurable": {"thread_id": "debug-resume"}}
        graph.invoke({"n": 0}, config)
        return [_debug_view(e) for e in graph.stream(None, config, stream_mode="debug")]

    expected = run(lg)
    assert expected[0] == (
        "checkpoint",
        1,
        {"n": 1, "log": ["a"]},
        {"source": "loop", "step": 1},
        ["b"],
        [("b", [])],
        False,
    )
    assert run(lib) == expected


@pytest.mark.parametrize("writes", ["none", "empty-dict", "command-without-update"])
def test_stream_of_a_node_that_writes_nothing(lib: Lib, lg: Lib, writes: str) -> None:
    def run(library: Lib) -> list:
        def idle(state: Steps) -> library.Command[Literal["work"]] | dict | None:
            if writes == "command-without-update":
                return library.Command(goto="work")
            return {} if writes == "empty-dict" else None

        builder = library.StateGraph(Steps)
        builder.add_node("idle", idle)
        builder.add_node("work", lambda s: {"n": s["n"] + 1})
        builder.add_edge(library.START, "idle")
        if writes != "command-without-update":
            builder.add_edge("idle", "work")
        return list(builder.compile().stream({"n": 0}, stream_mode=["updates", "values"]))

    expected = run(lg)
    assert expected == [
        ("values", {"n": 0, "log": []}),
        ("updates", {"idle": None}),
        ("updates", {"work": {"n": 1}}),
        ("values", {"n": 1, "log": []}),
    ]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_astream_updates_of_async_branches_arrive_in_finish_order(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> tuple:
        def branch(name: str, delay: float):
            async def node(state: Steps) -> dict:
                await anyio.sleep(delay)
                return {"log": [name]}

            return node

        builder = library.StateGraph(Steps)
        for name, delay in (("a", 0.06), ("b", 0.0), ("c", 0.03)):
            builder.add_node(name, branch(name, delay))
            builder.add_edge(library.START, name)
        graph = builder.compile()
        result = await graph.ainvoke({"n": 0})
        return result, [chunk async for chunk in graph.astream({"n": 0}, stream_mode="updates")]

    expected = await run(lg)
    # The state applies writes in node-name order; the updates stream reports as tasks finish.
    assert expected == (
        {"n": 0, "log": ["a", "b", "c"]},
        [{"b": {"log": ["b"]}}, {"c": {"log": ["c"]}}, {"a": {"log": ["a"]}}],
    )
    assert await run(lib) == expected
