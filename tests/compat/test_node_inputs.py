"""What a node can be given besides its state: the run config, the `Runtime` and its context."""

from dataclasses import dataclass
from typing import TypedDict

import pytest
from langchain_core.runnables import RunnableConfig

from ._support import Lib


class Text(TypedDict):
    text: str


@dataclass
class Context:
    user: str


def test_node_with_a_config_parameter_receives_the_run_config(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        def tag(state: Text, config: RunnableConfig) -> dict:
            configurable = config["configurable"]
            return {"text": f"{state['text']}:{configurable['suffix']}:{config['recursion_limit']}"}

        builder = library.StateGraph(Text)
        builder.add_node("tag", tag)
        builder.add_edge(library.START, "tag")
        config = {"configurable": {"suffix": "s"}, "recursion_limit": 9}
        return builder.compile().invoke({"text": "t"}, config)

    expected = run(lg)
    assert expected == {"text": "t:s:9"}
    assert run(lib) == expected


def test_a_node_never_sees_the_run_id_the_caller_gave_the_run(lib: Lib, lg: Lib) -> None:
    # The caller's `run_id` names the graph's run; a chat model a node calls with the node's
    # config would otherwise take it too, and every message it makes the same id.
    def run(library: Lib) -> dict:
        def tag(state: Text, config: RunnableConfig) -> dict:
            return {"text": f"{state['text']}:{config.get('run_id')}"}

        builder = library.StateGraph(Text)
        builder.add_node("tag", tag)
        builder.add_edge(library.START, "tag")
        run_id = "0193c5a4-0000-7000-8000-000000000001"
        return builder.compile().invoke({"text": "t"}, {"run_id": run_id})

    expected = run(lg)
    assert expected == {"text": "t:None"}
    assert run(lib) == expected


def test_a_node_reads_its_runs_id_from_the_runtime() -> None:
    import tether
    from tether.graph import START, StateGraph

    def tag(state: Text) -> dict:
        return {"text": f"{state['text']}:{tether.get_runtime().run_id}"}

    graph = StateGraph(Text).add_node("tag", tag).add_edge(START, "tag").compile()
    run_id = "0193c5a4-0000-7000-8000-000000000002"
    assert graph.invoke({"text": "t"}, {"run_id": run_id}) == {"text": f"t:{run_id}"}


@pytest.mark.anyio
async def test_async_node_with_a_config_parameter_receives_the_run_config(
    lib: Lib, lg: Lib
) -> None:
    async def run(library: Lib) -> dict:
        async def tag(state: Text, config: RunnableConfig) -> dict:
            return {"text": state["text"] + config["configurable"]["thread_id"]}

        builder = library.StateGraph(Text)
        builder.add_node("tag", tag)
        builder.add_edge(library.START, "tag")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        return await graph.ainvoke({"text": "on "}, {"configurable": {"thread_id": "th"}})

    expected = await run(lg)
    assert expected == {"text": "on th"}
    assert await run(lib) == expected


@pytest.mark.parametrize("context", [Context(user="ann"), {"user": "bob"}], ids=["object", "dict"])
def test_node_with_a_runtime_parameter_reads_the_invoke_context(lib: Lib, lg: Lib, context) -> None:
    def run(library: Lib) -> dict:
        runtime_type = library.Runtime

        def greet(state: Text, runtime: runtime_type[Context]) -> dict:
            return {"text": f"{state['text']} {runtime.context.user}"}

        builder = library.StateGraph(Text, context_schema=Context)
        builder.add_node("greet", greet)
        builder.add_edge(library.START, "greet")
        return builder.compile().invoke({"text": "hi"}, context=context)

    expected = run(lg)
    assert expected == {"text": f"hi {'ann' if isinstance(context, Context) else 'bob'}"}
    assert run(lib) == expected
