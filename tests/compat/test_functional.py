"""The Functional API: `@entrypoint` and `@task` — futures, persistence of finished tasks,
`previous` and `entrypoint.final`, interrupts in the entrypoint and in tasks, sync and async."""

import asyncio
import dataclasses
from typing import Any

import pytest

from ._support import Lib, Raised, history, normalise, outcome, snapshot, thread


def build_squares(lib: Lib, calls: list[Any], **entry_kwargs: Any) -> Any:
    """`square` tasks launched together, their futures read in order."""
    entrypoint, task = lib.func.entrypoint, lib.func.task

    @task
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @entrypoint(**entry_kwargs)
    def squares(numbers: list[int]) -> list[int]:
        futures = [square(n) for n in numbers]
        return [f.result() for f in futures]

    return squares


def test_entrypoint_runs_task_futures_and_returns_their_results(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        calls: list[Any] = []
        result = build_squares(library, calls).invoke([1, 2, 3])
        return result, sorted(calls)

    expected = run(lg)
    assert expected == ([1, 4, 9], [1, 2, 3])
    assert run(lib) == expected


def build_chain(lib: Lib, calls: list[Any], **entry_kwargs: Any) -> Any:
    """Two tasks, one after the other, and a custom chunk from each."""
    entrypoint, task = lib.func.entrypoint, lib.func.task

    @task
    def draft(topic: str) -> str:
        lib.get_stream_writer()({"drafting": topic})
        calls.append("draft")
        return f"draft on {topic}"

    @task
    def polish(text: str, *, loud: bool = False) -> str:
        calls.append("polish")
        return text.upper() if loud else text.title()

    @entrypoint(**entry_kwargs)
    def essay(topic: str) -> dict:
        text = draft(topic).result()
        return {"essay": polish(text, loud=True).result()}

    return essay


@pytest.mark.parametrize("mode", ["updates", "values", "custom", ["updates", "custom", "values"]],
                         ids=str)
def test_entrypoint_stream_modes_match(lib: Lib, lg: Lib, mode: Any) -> None:
    def run(library: Lib) -> list:
        return list(build_chain(library, []).stream("owls", stream_mode=mode))

    expected = run(lg)
    if mode == "updates":
        assert expected == [
            {"draft": "draft on owls"},
            {"polish": "DRAFT ON OWLS"},
            {"essay": {"essay": "DRAFT ON OWLS"}},
        ]
    if mode == "values":
        assert expected == [{"essay": "DRAFT ON OWLS"}]
    assert run(lib) == expected


def test_entrypoint_stream_without_mode_yields_updates(lib: Lib, lg: Lib) -> None:
    expected = list(build_chain(lg, []).stream("owls"))
    assert expected[-1] == {"essay": {"essay": "DRAFT ON OWLS"}}
    assert list(build_chain(lib, []).stream("owls")) == expected


@pytest.mark.anyio
async def test_async_entrypoint_gathers_async_tasks(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> tuple:
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        async def fetch(i: int) -> str:
            await asyncio.sleep(0.01 * (3 - i))
            return f"page{i}"

        @entrypoint()
        async def crawl(n: int) -> list[str]:
            pages = await asyncio.gather(*[fetch(i) for i in range(n)])
            last = await fetch(9)
            return [*pages, last]

        result = await crawl.ainvoke(3)
        chunks = [chunk async for chunk in crawl.astream(3, stream_mode="updates")]
        return result, chunks

    expected = await run(lg)
    assert expected[0] == ["page0", "page1", "page2", "page9"]
    # Updates arrive as the tasks finish: the shortest sleep first.
    assert expected[1][:3] == [{"fetch": "page2"}, {"fetch": "page1"}, {"fetch": "page0"}]
    assert await run(lib) == expected


def test_tasks_may_call_tasks(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        def inner(x: int) -> int:
            return x + 1

        @task
        def outer(x: int) -> int:
            return inner(x).result() * 2

        @entrypoint()
        def nest(x: int) -> int:
            return outer(x).result()

        return list(nest.stream(3, stream_mode="updates"))

    expected = run(lg)
    assert expected == [{"inner": 4}, {"outer": 8}, {"nest": 8}]
    assert run(lib) == expected


def test_previous_and_final_across_runs_of_a_thread(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        entrypoint = library.func.entrypoint

        @entrypoint(checkpointer=library.InMemorySaver())
        def tally(number: int, *, previous: Any = None) -> Any:
            previous = previous or 0
            return entrypoint.final(value=previous, save=previous + number)

        results = [tally.invoke(n, thread("t")) for n in (3, 4, 5)]
        results.append(snapshot(tally.get_state(thread("t"))))
        return results

    expected = run(lg)
    assert expected[:3] == [0, 3, 7]
    # The state a thread shows is the returned value, not the saved one.
    assert expected[3]["values"] == 7
    assert run(lib) == expected


def test_previous_is_none_without_a_checkpointer(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        @library.func.entrypoint()
        def echo(x: int, *, previous: Any = None) -> Any:
            return [x, previous]

        return [echo.invoke(1), echo.invoke(2)]

    expected = run(lg)
    assert expected == [[1, None], [2, None]]
    assert run(lib) == expected


def build_review(lib: Lib, calls: list[Any]) -> Any:
    """A task, then an `interrupt()` in the entrypoint, then a task using the answer."""
    entrypoint, task = lib.func.entrypoint, lib.func.task

    @task
    def compose(topic: str) -> str:
        calls.append(f"compose {topic}")
        return f"essay on {topic}"

    @task
    def publish(text: str, review: str) -> str:
        calls.append("publish")
        return f"{text} ({review})"

    @entrypoint(checkpointer=lib.InMemorySaver())
    def review(topic: str) -> dict:
        essay = compose(topic).result()
        verdict = lib.interrupt({"question": "ok?", "essay": essay})
        return {"published": publish(essay, verdict).result()}

    return review


def test_interrupt_in_entrypoint_keeps_finished_tasks_on_resume(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        calls: list[Any] = []
        graph = build_review(library, calls)
        first = normalise(list(graph.stream("cats", thread("t"), stream_mode="updates")))
        paused = snapshot(graph.get_state(thread("t")))
        second = normalise(list(graph.stream(library.Command(resume="fine"), thread("t"),
                                             stream_mode=["updates", "values"])))
        return [first, paused, second, snapshot(graph.get_state(thread("t"))), calls]

    expected = run(lg)
    assert expected[0][0] == {"compose": "essay on cats"}
    assert expected[1]["next"] == ("review",)
    assert expected[1]["tasks"] == [("review", [{"question": "ok?", "essay": "essay on cats"}])]
    assert expected[3]["values"] == {"published": "essay on cats (fine)"}
    # `compose` ran once: its result was kept with the paused step and replayed.
    assert expected[4] == ["compose cats", "publish"]
    assert run(lib) == expected


def test_history_of_a_functional_thread(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_review(library, [])
        graph.invoke("dogs", thread("t"))
        graph.invoke(library.Command(resume="good"), thread("t"))
        graph.invoke("eels", thread("t"))
        return normalise(history(graph.get_state_history(thread("t"))))

    expected = run(lg)
    assert [(h["source"], h["step"], h["next"]) for h in expected] == [
        ("input", 1, ("review",)),
        ("loop", 0, ()),
        ("input", -1, ("review",)),
    ]
    assert run(lib) == expected


def build_questions(lib: Lib, calls: list[Any]) -> Any:
    """Two tasks that each ask a question, one after the other."""
    entrypoint, task = lib.func.entrypoint, lib.func.task

    @task
    def ask(question: str) -> str:
        calls.append(question)
        return f"{question}={lib.interrupt(question)}"

    @entrypoint(checkpointer=lib.InMemorySaver())
    def survey(_: Any) -> list[str]:
        return [ask("name").result(), ask("age").result()]

    return survey


def test_interrupts_inside_tasks_get_their_own_answers(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        calls: list[Any] = []
        graph = build_questions(library, calls)
        out = [normalise(graph.invoke("go", thread("t")))]
        out.append(snapshot(graph.get_state(thread("t"))))
        out.append(normalise(graph.invoke(library.Command(resume="ann"), thread("t"))))
        out.append(normalise(graph.invoke(library.Command(resume=41), thread("t"))))
        out.append(calls)
        return out

    expected = run(lg)
    assert expected[0] == {"__interrupt__": [("Interrupt", "name")]}
    assert expected[1]["tasks"] == [("survey", ["name"])]
    assert expected[2] == {"__interrupt__": [("Interrupt", "age")]}
    assert expected[3] == ["name=ann", "age=41"]
    # A task that got its answer is not asked again.
    assert expected[4] == ["name", "name", "age", "age"]
    assert run(lib) == expected


def test_a_failing_task_fails_the_entrypoint(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        def lookup(key: str) -> str:
            raise KeyError(key)

        @entrypoint()
        def find(key: str) -> str:
            return lookup(key).result()

        return outcome(lambda: find.invoke("missing"))

    expected = run(lg)
    assert expected == ("raised", "KeyError")
    assert run(lib) == expected


def test_a_task_error_can_be_caught_by_the_entrypoint(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        def risky(x: int) -> int:
            if x == 2:
                raise ValueError("two")
            return x

        @entrypoint()
        def careful(xs: list[int]) -> list[Any]:
            out: list[Any] = []
            for future in [risky(x) for x in xs]:
                try:
                    out.append(future.result())
                except ValueError as exc:
                    out.append(f"failed: {exc}")
            return out

        return careful.invoke([1, 2, 3])

    expected = run(lg)
    assert expected == [1, "failed: two", 3]
    assert run(lib) == expected


def test_task_retry_policy_retries_the_task_only(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        entrypoint, task = library.func.entrypoint, library.func.task
        calls: list[str] = []
        policy = library.RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False)

        @task(retry_policy=policy)
        def flaky(x: int) -> int:
            calls.append("flaky")
            if calls.count("flaky") < 3:
                raise ConnectionError("try again")
            return x

        @entrypoint()
        def main(x: int) -> int:
            calls.append("main")
            return flaky(x).result()

        return main.invoke(7), calls

    expected = run(lg)
    assert expected == (7, ["main", "flaky", "flaky", "flaky"])
    assert run(lib) == expected


def test_calling_a_task_outside_a_run_raises(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        @library.func.task
        def lonely(x: int) -> int:
            return x

        return outcome(lambda: lonely(1))

    expected = run(lg)
    assert expected == ("raised", "RuntimeError")
    assert run(lib) == expected


def test_tasks_called_from_a_state_graph_node(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        from typing import TypedDict

        class State(TypedDict):
            words: list[str]

        @library.func.task
        def shout(word: str) -> str:
            return word.upper()

        def node(state: State) -> dict:
            futures = [shout(w) for w in state["words"]]
            return {"words": [f.result() for f in futures]}

        builder = library.StateGraph(State)
        builder.add_node("node", node)
        builder.add_edge(library.START, "node")
        graph = builder.compile()
        chunks = list(graph.stream({"words": ["a"]}, stream_mode="updates"))
        return [graph.invoke({"words": ["a", "b"]}), chunks]

    expected = run(lg)
    assert expected == [{"words": ["A", "B"]}, [{"shout": "A"}, {"node": {"words": ["A"]}}]]
    assert run(lib) == expected


@dataclasses.dataclass
class Ctx:
    user: str


def test_entrypoint_receives_runtime_config_and_context(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        def where(x: int, config=None) -> Any:
            return [x, config["configurable"]["thread_id"]]

        @entrypoint(checkpointer=library.InMemorySaver(), context_schema=Ctx)
        def greet(name: str, *, runtime, config) -> dict:
            return {
                "greeting": f"hi {name} from {runtime.context.user}",
                "thread": config["configurable"]["thread_id"],
                "task": where(1).result(),
            }

        return greet.invoke("bo", thread("t7"), context=Ctx("ann"))

    expected = run(lg)
    assert expected == {"greeting": "hi bo from ann", "thread": "t7", "task": [1, "t7"]}
    assert run(lib) == expected


def test_entrypoint_without_a_parameter_is_refused(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        def empty() -> int:
            return 1

        return outcome(lambda: library.func.entrypoint()(empty))

    expected = run(lg)
    assert expected == ("raised", "ValueError")
    assert run(lib) == expected


def test_entrypoint_generators_are_refused(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        def gen(x: int) -> Any:
            yield x

        return outcome(lambda: library.func.entrypoint()(gen))

    expected = run(lg)
    assert expected == ("raised", "NotImplementedError")
    assert run(lib) == expected


def test_entrypoint_interrupt_output_keeps_the_last_value(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_review(library, [])
        out = [normalise(graph.invoke("cats", thread("t")))]
        out.append(normalise(graph.invoke(library.Command(resume="ok"), thread("t"))))
        out.append(normalise(graph.invoke("dogs", thread("t"))))
        return out

    expected = run(lg)
    assert expected[0] == {"__interrupt__": [("Interrupt", {"question": "ok?",
                                                           "essay": "essay on cats"})]}
    # A pause after a finished run shows the previous return value with the new question.
    assert expected[2]["published"] == "essay on cats (ok)"
    assert run(lib) == expected


def test_a_sync_entrypoint_cannot_call_an_async_task(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        async def later(x: int) -> int:
            return x

        @entrypoint()
        def main(x: int) -> int:
            return later(x).result()

        got = outcome(lambda: main.invoke(1))
        return got[0], isinstance(got[1], Raised) and got[1] == "RuntimeError"

    expected = run(lg)
    assert expected == ("raised", True)
    assert run(lib) == expected


def test_entrypoint_and_its_tasks_reach_the_long_term_store(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        import importlib

        store = importlib.import_module(f"{library.name}.store.memory").InMemoryStore()
        get_store = importlib.import_module(f"{library.name}.config").get_store
        entrypoint, task = library.func.entrypoint, library.func.task

        @task
        def remember(fact: str) -> str:
            get_store().put(("facts",), fact, {"said": fact})
            return fact

        @entrypoint(store=store)
        def chat(fact: str, *, store) -> list:
            remember(fact).result()
            return sorted(item.key for item in store.search(("facts",)))

        return [chat.invoke("sky is blue"), chat.invoke("grass is green")]

    expected = run(lg)
    assert expected == [["sky is blue"], ["grass is green", "sky is blue"]]
    assert run(lib) == expected
