"""Human in the loop: `interrupt()` with `Command(resume=...)`, `interrupt_before`/`_after`."""

import operator
from typing import Annotated, TypedDict

import pytest

from ._support import Lib, history, normalise, outcome, snapshot, thread


class Form(TypedDict):
    log: Annotated[list[str], operator.add]


def build_form(lib: Lib, calls: list[str], *, async_nodes: bool = False, checkpointer=True):
    """`ask` asks two questions with two `interrupt()`s, then `after` logs."""

    def ask(state: Form) -> dict:
        calls.append("ask")
        name = lib.interrupt("name?")
        calls.append(f"got {name}")
        age = lib.interrupt({"question": "age?", "after": name})
        return {"log": [f"{name}:{age}"]}

    async def ask_async(state: Form) -> dict:
        return ask(state)

    def after(state: Form) -> dict:
        return {"log": ["after"]}

    builder = lib.StateGraph(Form)
    builder.add_node("ask", ask_async if async_nodes else ask)
    builder.add_node("after", after)
    builder.add_edge(lib.START, "ask")
    builder.add_edge("ask", "after")
    return builder.compile(checkpointer=lib.InMemorySaver() if checkpointer else None)


def test_two_interrupts_in_one_node_resume_one_after_the_other(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        calls: list[str] = []
        graph = build_form(library, calls)
        steps = [normalise(graph.invoke({"log": []}, thread("t")))]
        steps.append(snapshot(graph.get_state(thread("t"))))
        steps.append(normalise(graph.invoke(library.Command(resume="ann"), thread("t"))))
        steps.append(snapshot(graph.get_state(thread("t"))))
        steps.append(normalise(graph.invoke(library.Command(resume=41), thread("t"))))
        steps.append(snapshot(graph.get_state(thread("t"))))
        return [*steps, calls]

    expected = run(lg)
    assert expected[0] == {"log": [], "__interrupt__": [("Interrupt", "name?")]}
    assert expected[1]["next"] == ("ask",)
    assert expected[1]["tasks"] == [("ask", ["name?"])]
    assert expected[1]["interrupts"] == ["name?"]
    assert expected[2]["__interrupt__"] == [("Interrupt", {"question": "age?", "after": "ann"})]
    assert expected[4] == {"log": ["ann:41", "after"]}
    assert expected[5]["next"] == ()
    # The node starts over on each resume; earlier answers are replayed, not asked again.
    assert expected[6] == ["ask", "ask", "got ann", "ask", "got ann"]
    assert run(lib) == expected


def test_history_of_an_interrupted_then_resumed_thread(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_form(library, [])
        graph.invoke({"log": []}, thread("t"))
        graph.invoke(library.Command(resume="a"), thread("t"))
        graph.invoke(library.Command(resume="b"), thread("t"))
        return history(graph.get_state_history(thread("t")))

    expected = run(lg)
    assert [(h["step"], h["next"]) for h in expected] == [
        (2, ()),
        (1, ("after",)),
        (0, ("ask",)),
        (-1, ("__start__",)),
    ]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_interrupt_in_async_node_resumes_under_ainvoke(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> list:
        calls: list[str] = []
        graph = build_form(library, calls, async_nodes=True)
        results = [await graph.ainvoke({"log": []}, thread("t"))]
        results.append(await graph.ainvoke(library.Command(resume="x"), thread("t")))
        results.append(await graph.ainvoke(library.Command(resume="y"), thread("t")))
        state = await graph.aget_state(thread("t"))
        return [normalise(results), snapshot(state), calls]

    expected = await run(lg)
    assert expected[0][-1] == {"log": ["x:y", "after"]}
    assert await run(lib) == expected


def test_interrupt_appears_as_an_update_chunk_when_streaming(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_form(library, [])
        chunks = [list(graph.stream({"log": []}, thread("t"), stream_mode="updates"))]
        resume = library.Command(resume="p")
        chunks.append(list(graph.stream(resume, thread("t"), stream_mode="updates")))
        resume = library.Command(resume="q")
        chunks.append(list(graph.stream(resume, thread("t"), stream_mode=["values", "updates"])))
        return normalise(chunks)

    expected = run(lg)
    assert expected[0] == [{"__interrupt__": (("Interrupt", "name?"),)}]
    assert expected[2][-1] == ("values", {"log": ["p:q", "after"]})
    assert run(lib) == expected


def test_interrupt_without_checkpointer_gives_the_same_outcome(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        graph = build_form(library, [], checkpointer=False)
        return normalise(outcome(lambda: graph.invoke({"log": []})))

    expected = run(lg)
    assert expected == ("ok", {"log": [], "__interrupt__": [("Interrupt", "name?")]})
    assert run(lib) == expected


class Review(TypedDict):
    draft: str
    verdicts: Annotated[list[str], operator.add]


def build_parallel_reviews(lib: Lib):
    """Two reviewers interrupt in the same superstep."""

    def reviewer(name: str):
        def node(state: Review) -> dict:
            answer = lib.interrupt(f"{name}: approve {state['draft']}?")
            return {"verdicts": [f"{name}={answer}"]}

        return node

    builder = lib.StateGraph(Review)
    builder.add_node("legal", reviewer("legal"))
    builder.add_node("brand", reviewer("brand"))
    builder.add_edge(lib.START, "legal")
    builder.add_edge(lib.START, "brand")
    return builder.compile(checkpointer=lib.InMemorySaver())


def test_parallel_interrupts_resume_by_interrupt_id(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_parallel_reviews(library)
        first = graph.invoke({"draft": "ad", "verdicts": []}, thread("r"))
        pending = graph.get_state(thread("r")).interrupts
        answers = {i.id: i.value.split(":")[0].upper() for i in pending}
        result = graph.invoke(library.Command(resume=answers), thread("r"))
        return [
            sorted(map(str, normalise(first)["__interrupt__"])),
            sorted(i.value for i in pending),
            result,
        ]

    expected = run(lg)
    assert expected[1] == ["brand: approve ad?", "legal: approve ad?"]
    assert expected[2] == {"draft": "ad", "verdicts": ["brand=BRAND", "legal=LEGAL"]}
    assert run(lib) == expected


class Shared(TypedDict):
    text: str


def test_interrupt_inside_a_subgraph_resumes_through_the_parent(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def confirm(state: Shared) -> dict:
            return {"text": state["text"] + f"+{library.interrupt('ok?')}"}

        child = library.StateGraph(Shared)
        child.add_node("confirm", confirm)
        child.add_edge(library.START, "confirm")
        parent = library.StateGraph(Shared)
        parent.add_node("child", child.compile())
        parent.add_node("done", lambda s: {"text": s["text"] + "!"})
        parent.add_edge(library.START, "child")
        parent.add_edge("child", "done")
        graph = parent.compile(checkpointer=library.InMemorySaver())
        first = normalise(graph.invoke({"text": "go"}, thread("s")))
        paused = snapshot(graph.get_state(thread("s")))
        return [first, paused, graph.invoke(library.Command(resume="yes"), thread("s"))]

    expected = run(lg)
    assert expected[0] == {"text": "go", "__interrupt__": [("Interrupt", "ok?")]}
    assert expected[1]["next"] == ("child",)
    assert expected[2] == {"text": "go+yes!"}
    assert run(lib) == expected


class Steps(TypedDict):
    log: Annotated[list[str], operator.add]


def build_three_steps(lib: Lib, **compile_kwargs):
    builder = lib.StateGraph(Steps)
    for name in ("one", "two", "three"):
        builder.add_node(name, lambda _s, name=name: {"log": [name]})
    builder.add_edge(lib.START, "one")
    builder.add_edge("one", "two")
    builder.add_edge("two", "three")
    return builder.compile(checkpointer=lib.InMemorySaver(), **compile_kwargs)


@pytest.mark.parametrize(
    "pauses",
    [
        {"interrupt_before": ["two"]},
        {"interrupt_after": ["two"]},
        {"interrupt_before": ["two", "three"]},
        {"interrupt_before": ["one"], "interrupt_after": ["three"]},
        {"interrupt_after": "*"},
    ],
    ids=str,
)
def test_static_interrupts_pause_and_invoke_none_continues(lib: Lib, lg: Lib, pauses: dict) -> None:
    def run(library: Lib) -> list:
        graph = build_three_steps(library, **pauses)
        trace = [graph.invoke({"log": []}, thread("t")), snapshot(graph.get_state(thread("t")))]
        for _ in range(4):
            if not graph.get_state(thread("t")).next:
                break
            trace.append(graph.invoke(None, thread("t")))
            trace.append(snapshot(graph.get_state(thread("t"))))
        trace.append(history(graph.get_state_history(thread("t"))))
        return normalise(trace)

    expected = run(lg)
    assert expected[-2]["values"] == {"log": ["one", "two", "three"]}
    assert run(lib) == expected


def test_interrupt_before_shows_in_the_updates_stream(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_three_steps(library, interrupt_before=["three"])
        first = list(graph.stream({"log": []}, thread("t"), stream_mode="updates"))
        return normalise([first, list(graph.stream(None, thread("t"), stream_mode="updates"))])

    expected = run(lg)
    assert expected[0][:2] == [{"one": {"log": ["one"]}}, {"two": {"log": ["two"]}}]
    assert expected[1] == [{"three": {"log": ["three"]}}]
    assert run(lib) == expected


def test_update_state_while_paused_changes_what_the_next_node_sees(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_three_steps(library, interrupt_before=["three"])
        graph.invoke({"log": []}, thread("t"))
        graph.update_state(thread("t"), {"log": ["edited"]})
        paused = snapshot(graph.get_state(thread("t")))
        return [paused, graph.invoke(None, thread("t"))]

    expected = run(lg)
    assert expected[0]["next"] == ("three",)
    assert expected[1] == {"log": ["one", "two", "edited", "three"]}
    assert run(lib) == expected


def test_command_update_on_a_paused_thread_applies_it_and_continues(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_three_steps(library, interrupt_before=["two"])
        graph.invoke({"log": []}, thread("t"))
        command = library.Command(update={"log": ["injected"]})
        return normalise(
            [
                outcome(lambda: graph.invoke(command, thread("t"))),
                snapshot(graph.get_state(thread("t"))),
            ]
        )

    expected = run(lg)
    assert expected[0] == ("ok", {"log": ["one", "injected", "two", "three"]})
    assert expected[1]["next"] == ()
    assert run(lib) == expected


@pytest.mark.anyio
async def test_astream_pauses_at_interrupt_and_resumes(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> list:
        graph = build_form(library, [], async_nodes=True)
        chunks = []
        for given in ({"log": []}, library.Command(resume="m"), library.Command(resume="n")):
            stream = graph.astream(given, thread("a"), stream_mode=["updates", "values"])
            chunks.append([chunk async for chunk in stream])
        return normalise(chunks)

    expected = await run(lg)
    assert expected[0] == [
        ("values", {"log": []}),
        ("updates", {"__interrupt__": (("Interrupt", "name?"),)}),
        ("values", {"log": [], "__interrupt__": (("Interrupt", "name?"),)}),
    ]
    assert expected[2][-1] == ("values", {"log": ["m:n", "after"]})
    assert await run(lib) == expected
