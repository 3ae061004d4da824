"""The long-term store inside graphs: every way a node or tool reaches it — `runtime.store`,
`get_store()`, a `store` parameter, `InjectedStore`, `ToolRuntime.store` — on LangGraph and on
tether, each with its own library's `InMemoryStore`, compared (values, streamed updates, what
the store holds afterwards, and errors)."""

# No `from __future__ import annotations`: LangGraph finds a `store` parameter by its
# annotation's value (`BaseStore`), so the annotations below must stay evaluated.
import importlib
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from ._agents import LANGGRAPH_DEPRECATIONS, asks, call, model, views
from ._support import Lib, aoutcome, outcome

pytestmark = pytest.mark.filterwarnings(LANGGRAPH_DEPRECATIONS)


class Notes(TypedDict):
    user: str
    text: str
    seen: Annotated[list[str], operator.add]


INPUT = {"user": "ada", "text": "likes sailing", "seen": []}


def new_store(library: Lib) -> Any:
    """An empty in-memory store of `library`, with a memory already there for "ada"."""
    store = importlib.import_module(f"{library.name}.store.memory").InMemoryStore()
    store.put(("profiles",), "ada", {"name": "Ada Lovelace"})
    return store


def base_store(library: Lib) -> Any:
    """`BaseStore` of `library`: the annotation LangGraph looks for on a `store` parameter."""
    return importlib.import_module(f"{library.name}.store.base").BaseStore


def get_store(library: Lib) -> Any:
    return importlib.import_module(f"{library.name}.config").get_store


def held(store: Any, *prefix: str) -> list[tuple[tuple[str, ...], str, Any]]:
    """What the store holds under `prefix`: (namespace, key, value), in a stable order."""
    items = store.search(prefix or ("memories",), limit=100)
    return sorted((item.namespace, item.key, item.value) for item in items)


def remember(store: Any, state: Notes) -> dict[str, list[str]]:
    """What every node below does with the store it reached: read the profile, write a memory."""
    profile = store.get(("profiles",), state["user"])
    store.put(("memories", state["user"]), "m1", {"text": state["text"]})
    return {"seen": [profile.value["name"] if profile else "nobody"]}


def one_node(library: Lib, node: Any, **compile_options: Any) -> Any:
    builder = library.StateGraph(Notes)
    builder.add_node("remember", node)
    builder.add_edge(library.START, "remember")
    builder.add_edge("remember", library.END)
    return builder.compile(**compile_options)


# -- nodes ----------------------------------------------------------------------------------


def node_by(library: Lib, way: str) -> Any:
    """A node that reaches the graph's store `way`."""
    if way == "runtime":
        def by_runtime(state: Notes, runtime: library.Runtime) -> dict[str, list[str]]:
            return remember(runtime.store, state)
        return by_runtime
    if way == "get_store":
        fetch = get_store(library)

        def by_get_store(state: Notes) -> dict[str, list[str]]:
            return remember(fetch(), state)
        return by_get_store
    annotation = base_store(library)

    def by_parameter(state: Notes, *, store: annotation) -> dict[str, list[str]]:  # type: ignore[valid-type]
        return remember(store, state)
    return by_parameter


WAYS = ["runtime", "get_store", "parameter"]


@pytest.mark.parametrize("way", WAYS)
def test_a_node_reaches_the_graph_store(lib: Lib, lg: Lib, way: str) -> None:
    def run(library: Lib) -> Any:
        store = new_store(library)
        graph = one_node(library, node_by(library, way), store=store)
        result = graph.invoke(INPUT)
        updates = list(graph.stream({**INPUT, "user": "bob"}, stream_mode="updates"))
        return result, updates, held(store), graph.store is store

    expected = run(lg)
    assert expected[0]["seen"] == ["Ada Lovelace"]
    assert expected[3] is True
    assert run(lib) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("way", WAYS)
async def test_an_async_node_reaches_the_graph_store(lib: Lib, lg: Lib, way: str) -> None:
    async def run(library: Lib) -> Any:
        store = new_store(library)
        fetch = get_store(library)
        annotation = base_store(library)

        async def by_runtime(state: Notes, runtime: library.Runtime) -> dict[str, Any]:
            return await aremember(runtime.store, state)

        async def by_get_store(state: Notes) -> dict[str, Any]:
            return await aremember(fetch(), state)

        async def by_parameter(state: Notes, store: annotation) -> dict[str, Any]:  # type: ignore[valid-type]
            return await aremember(store, state)

        node = {"runtime": by_runtime, "get_store": by_get_store, "parameter": by_parameter}[way]
        result = await one_node(library, node, store=store).ainvoke(INPUT)
        return result, held(store)

    expected = await run(lg)
    assert expected[0]["seen"] == ["Ada Lovelace"]
    assert await run(lib) == expected


async def aremember(store: Any, state: Notes) -> dict[str, list[str]]:
    profile = await store.aget(("profiles",), state["user"])
    await store.aput(("memories", state["user"]), "m1", {"text": state["text"]})
    return {"seen": [profile.value["name"] if profile else "nobody"]}


@pytest.mark.parametrize("way", WAYS)
def test_without_a_store_a_node_gets_none(lib: Lib, lg: Lib, way: str) -> None:
    def run(library: Lib) -> Any:
        fetch = get_store(library)
        annotation = base_store(library)

        def by_runtime(state: Notes, runtime: library.Runtime) -> dict[str, Any]:
            return {"seen": [repr(runtime.store)]}

        def by_get_store(state: Notes) -> dict[str, Any]:
            return {"seen": [repr(fetch())]}

        def by_parameter(state: Notes, store: annotation) -> dict[str, Any]:  # type: ignore[valid-type]
            return {"seen": [repr(store)]}

        node = {"runtime": by_runtime, "get_store": by_get_store, "parameter": by_parameter}[way]
        graph = one_node(library, node)
        return graph.invoke(INPUT), graph.store

    assert run(lib) == run(lg) == ({**INPUT, "seen": ["None"]}, None)


def test_get_store_outside_a_node_raises_the_same_error(lib: Lib, lg: Lib) -> None:
    assert outcome(get_store(lib)) == outcome(get_store(lg)) == ("raised", "RuntimeError")


def test_parallel_sync_nodes_share_the_store(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        store = new_store(library)
        fetch = get_store(library)

        def writer(name: str) -> Any:
            def write(state: Notes) -> dict[str, Any]:
                fetch().put(("memories", state["user"]), name, {"by": name})
                return {"seen": [name]}
            return write

        builder = library.StateGraph(Notes)
        for name in ("a", "b", "c"):
            builder.add_node(name, writer(name))
            builder.add_edge(library.START, name)
        result = builder.compile(store=store).invoke(INPUT)
        return result, held(store)

    expected = run(lg)
    assert [key for _ns, key, _v in expected[1]] == ["a", "b", "c"]
    assert run(lib) == expected


# -- subgraphs ------------------------------------------------------------------------------


@pytest.mark.parametrize("parent_store", ["a store", "no store"])
@pytest.mark.parametrize("called", ["as a node", "from a node"])
def test_a_subgraph_uses_the_store_of_the_run(lib: Lib, lg: Lib, called: str,
                                              parent_store: str) -> None:
    """The store belongs to the run: a subgraph, added as a node or invoked from one, uses the
    calling graph's store — even when compiled with a store of its own."""

    def run(library: Lib) -> Any:
        store, own = new_store(library), new_store(library)
        child = one_node(library, node_by(library, "get_store") if parent_store == "a store"
                         else node_by_get_store_or_none(library), store=own)
        builder = library.StateGraph(Notes)
        if called == "as a node":
            builder.add_node("child", child)
        else:
            def calls_child(state: Notes) -> Any:
                return child.invoke(state)

            builder.add_node("child", calls_child)
        builder.add_edge(library.START, "child")
        graph = builder.compile(store=store if parent_store == "a store" else None)
        return graph.invoke(INPUT), held(store), held(own)

    expected = run(lg)
    if parent_store == "a store":
        assert expected[1] == [(("memories", "ada"), "m1", {"text": "likes sailing"})]
    assert expected[2] == []
    assert run(lib) == expected


def node_by_get_store_or_none(library: Lib) -> Any:
    fetch = get_store(library)

    def which(state: Notes) -> dict[str, list[str]]:
        return {"seen": [repr(fetch())]}

    return which


# -- tools ----------------------------------------------------------------------------------


def memory_tools(library: Lib) -> list[Any]:
    injected_store = library.prebuilt.InjectedStore
    tool_runtime = library.prebuilt.ToolRuntime

    @tool
    def save_memory(text: str, store: Annotated[Any, injected_store()]) -> str:
        """Save a memory about the user."""
        store.put(("memories", "ada"), text.split(maxsplit=1)[0], {"text": text})
        return f"saved {text!r}"

    @tool
    def recall(topic: str, runtime: tool_runtime) -> str:
        """Recall what is known about a topic."""
        found = runtime.store.search(("memories", "ada"))
        return ", ".join(item.value["text"] for item in found if topic in item.value["text"])

    return [save_memory, recall]


def test_injected_store_and_tool_runtime_in_a_tool_node(lib: Lib, lg: Lib) -> None:
    # The two calls run in parallel: the recall asks only for what was stored before them.
    state = {"messages": [asks(call("save_memory", "1", text="sailing on sundays"),
                               call("recall", "2", topic="child"))]}

    def run(library: Lib) -> Any:
        store = new_store(library)
        store.put(("memories", "ada"), "old", {"text": "sailing as a child"})
        tools = memory_tools(library)
        builder = library.StateGraph(library.MessagesState)
        builder.add_node("tools", library.prebuilt.ToolNode(tools))
        builder.add_edge(library.START, "tools")
        result = builder.compile(store=store).invoke(state)
        schema = tools[0].tool_call_schema.model_json_schema()
        return views(result["messages"]), held(store), sorted(schema["properties"])

    expected = run(lg)
    assert expected[2] == ["text"]  # the model never sees the store parameter
    assert expected[0][-2][1] == "saved 'sailing on sundays'"
    assert expected[0][-1][1] == "sailing as a child"
    assert run(lib) == expected


def test_injected_store_without_a_store_fails_alike(lib: Lib, lg: Lib) -> None:
    state = {"messages": [asks(call("save_memory", "1", text="sailing"))]}

    def run(library: Lib) -> Any:
        builder = library.StateGraph(library.MessagesState)
        builder.add_node("tools", library.prebuilt.ToolNode(memory_tools(library)))
        builder.add_edge(library.START, "tools")
        graph = builder.compile()
        return outcome(lambda: views(graph.invoke(state)["messages"]))

    expected = run(lg)
    assert expected == ("raised", "ValueError")
    assert run(lib) == expected


def test_create_react_agent_with_a_store(lib: Lib, lg: Lib) -> None:
    script = [asks(call("save_memory", "1", text="tea at five")), AIMessage("Noted.")]

    def run(library: Lib) -> Any:
        store = new_store(library)
        fetch = get_store(library)
        prompts: list[str] = []

        def prompt(state: dict[str, Any]) -> list[Any]:
            # A prompt that reads the user's memories from the store, as LangGraph's docs do.
            memories = [item.value["text"] for item in fetch().search(("memories", "ada"))]
            prompts.append(f"memories: {memories}")
            return [HumanMessage(prompts[-1]), *state["messages"]]

        agent = library.prebuilt.create_react_agent(
            model(*script), memory_tools(library), prompt=prompt, store=store)
        result = agent.invoke({"messages": [HumanMessage("remember: tea at five")]})
        return views(result["messages"]), held(store), prompts, agent.store is store

    expected = run(lg)
    assert expected[2] == ["memories: []", "memories: ['tea at five']"]
    assert run(lib) == expected


# -- the same graph, two stores -------------------------------------------------------------


@pytest.mark.anyio
async def test_one_graph_with_a_store_per_copy(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> Any:
        first, second = new_store(library), new_store(library)
        node = node_by(library, "get_store")
        await one_node(library, node, store=first).ainvoke(INPUT)
        result = await aoutcome(lambda: one_node(library, node, store=second).ainvoke(
            {**INPUT, "user": "bob", "text": "plays chess"}))
        return result, held(first), held(second)

    expected = await run(lg)
    assert await run(lib) == expected
