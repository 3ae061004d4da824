"""`MessagesState` and `add_messages`: dicts, tuples, strings and message objects, ids, removal."""

from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, SystemMessage

from ._support import Lib, message, outcome


def _view(messages: list) -> list[tuple[str, str, str]]:
    """What both libraries must agree on; ids are random, so only checked for presence below."""
    return [(type(m).__name__, *message(m)) for m in messages]


def build_chat(lib: Lib, *, async_nodes: bool = False):
    """A chatbot without a model: each node answers in a different message form."""

    class Chat(lib.MessagesState):
        turns: int

    def greet(state: Chat) -> dict:
        return {"messages": [{"role": "assistant", "content": f"hello ({len(state['messages'])})"}]}

    def echo(state: Chat) -> dict:
        last = state["messages"][-1]
        return {"messages": [("ai", f"echo: {last.content}")], "turns": 1}

    def close(state: Chat) -> dict:
        return {"messages": [AIMessage(content="bye"), SystemMessage(content="done")]}

    def wrap(fn):
        async def node(state: Chat) -> dict:
            return fn(state)

        return node if async_nodes else fn

    builder = lib.StateGraph(Chat)
    builder.add_node("greet", wrap(greet))
    builder.add_node("echo", wrap(echo))
    builder.add_node("close", wrap(close))
    builder.add_edge(lib.START, "greet")
    builder.add_edge("greet", "echo")
    builder.add_edge("echo", "close")
    return builder.compile()


INPUTS = {
    "dicts": {"messages": [{"role": "user", "content": "hi"}]},
    "tuples": {"messages": [("user", "hi"), ("system", "be brief")]},
    "objects": {"messages": [HumanMessage(content="hi")]},
    "a string": {"messages": "hi"},
}


@pytest.mark.parametrize("form", list(INPUTS))
def test_messages_state_coerces_every_message_form(lib: Lib, lg: Lib, form: str) -> None:
    def run(library: Lib) -> tuple:
        result = build_chat(library).invoke(INPUTS[form])
        assert all(m.id for m in result["messages"])
        assert len({m.id for m in result["messages"]}) == len(result["messages"])
        return _view(result["messages"]), result["turns"]

    expected = run(lg)
    assert expected[0][-3:] == [
        ("AIMessage", "ai", f"echo: {expected[0][-4][2]}"),
        ("AIMessage", "ai", "bye"),
        ("SystemMessage", "system", "done"),
    ]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_messages_state_with_async_nodes_under_ainvoke(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> list:
        result = await build_chat(library, async_nodes=True).ainvoke(INPUTS["dicts"])
        return _view(result["messages"])

    expected = await run(lg)
    assert [content for _, _, content in expected] == [
        "hi",
        "hello (1)",
        "echo: hello (1)",
        "bye",
        "done",
    ]
    assert await run(lib) == expected


def test_add_messages_appends_coerced_messages(lib: Lib, lg: Lib) -> None:
    left = [{"role": "user", "content": "a"}, ("assistant", "b")]
    right = [("human", "c"), "d", {"type": "system", "content": "e"}, HumanMessage("f", id="f")]

    expected = _view(lg.add_messages(left, right))
    assert expected == [
        ("HumanMessage", "human", "a"),
        ("AIMessage", "ai", "b"),
        ("HumanMessage", "human", "c"),
        ("HumanMessage", "human", "d"),
        ("SystemMessage", "system", "e"),
        ("HumanMessage", "human", "f"),
    ]
    assert _view(lib.add_messages(left, right)) == expected


def test_add_messages_replaces_a_message_with_the_same_id(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        history = library.add_messages([], [HumanMessage("q", id="1"), AIMessage("v1", id="2")])
        merged = library.add_messages(history, [AIMessage("v2", id="2"), AIMessage("n", id="3")])
        return [(m.id, *message(m)) for m in merged]

    expected = run(lg)
    assert expected == [("1", "human", "q"), ("2", "ai", "v2"), ("3", "ai", "n")]
    assert run(lib) == expected


def test_add_messages_removes_by_id_with_remove_message(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        history = library.add_messages([], [HumanMessage("q", id="1"), AIMessage("a", id="2")])
        return [m.id for m in library.add_messages(history, [RemoveMessage(id="1")])]

    expected = run(lg)
    assert expected == ["2"]
    assert run(lib) == expected


@pytest.mark.parametrize(
    "right",
    [[RemoveMessage(id="missing")], [{"role": "bogus", "content": "x"}]],
    ids=["remove-missing-id", "unknown-role"],
)
def test_add_messages_rejects_a_missing_id_and_an_unknown_role(
    lib: Lib, lg: Lib, right: list
) -> None:
    expected = outcome(lambda: lg.add_messages([], right))
    assert expected[0] == "raised"
    assert outcome(lambda: lib.add_messages([], right)) == expected


def test_add_messages_accepts_a_single_message_not_in_a_list(lib: Lib, lg: Lib) -> None:
    expected = _view(lg.add_messages([HumanMessage("a")], AIMessage("b")))
    assert expected == [("HumanMessage", "human", "a"), ("AIMessage", "ai", "b")]
    assert _view(lib.add_messages([HumanMessage("a")], AIMessage("b"))) == expected


def test_custom_state_with_add_messages_reducer_matches(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        class State(TypedDict):
            history: Annotated[list, library.add_messages]

        builder = library.StateGraph(State)
        builder.add_node("reply", lambda s: {"history": [("ai", f"{len(s['history'])} so far")]})
        builder.add_edge(library.START, "reply")
        return _view(
            builder.compile().invoke({"history": [("user", "x"), ("user", "y")]})["history"]
        )

    expected = run(lg)
    assert expected[-1] == ("AIMessage", "ai", "2 so far")
    assert run(lib) == expected


def test_chat_memory_accumulates_messages_across_turns_on_a_thread(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        def bot(state) -> dict:
            last = state["messages"][-1]
            return {"messages": [("ai", f"re {last.content} ({len(state['messages'])})")]}

        builder = library.StateGraph(library.MessagesState)
        builder.add_node("bot", bot)
        builder.add_edge(library.START, "bot")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        config = {"configurable": {"thread_id": "chat"}}
        graph.invoke({"messages": [("user", "hi")]}, config)
        result = graph.invoke({"messages": [{"role": "user", "content": "again"}]}, config)
        stored = graph.get_state(config).values["messages"]
        assert [m.id for m in stored] == [m.id for m in result["messages"]]
        assert len({m.id for m in stored}) == len(stored)
        return _view(result["messages"])

    expected = run(lg)
    assert expected == [
        ("HumanMessage", "human", "hi"),
        ("AIMessage", "ai", "re hi (1)"),
        ("HumanMessage", "human", "again"),
        ("AIMessage", "ai", "re again (3)"),
    ]
    assert run(lib) == expected
