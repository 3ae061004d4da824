"""`ToolNode` and `tools_condition`: the same calls give the same tool messages, errors, commands
and routes on LangGraph and tether, alone and inside a hand-built agent."""

import asyncio
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool

from ._agents import add, asks, call, get_weather, model, multiply, views
from ._support import Lib, outcome

pytestmark = pytest.mark.filterwarnings(
    "ignore::langgraph.warnings.LangGraphDeprecatedSinceV10")


def _shown(result: Any) -> Any:
    if isinstance(result, dict):
        return {k: views(v) if isinstance(v, list) else v for k, v in result.items()}
    return repr(result)


def _alone(library: Lib, node: Any, schema: Any = None) -> Any:
    """A graph whose only node is `node` (LangGraph's ToolNode runs only inside a graph)."""
    builder = library.StateGraph(schema or library.MessagesState)
    builder.add_node("tools", node)
    builder.add_edge(library.START, "tools")
    return builder.compile()


def test_parallel_calls_from_a_state_are_answered_in_call_order(lib: Lib, lg: Lib) -> None:
    state = {"messages": [HumanMessage("hi"), asks(call("add", "1", a=1, b=2),
                                                   call("multiply", "2", a=3, b=4),
                                                   call("get_weather", "3", city="Paris"))]}

    def run(library: Lib) -> Any:
        graph = _alone(library, library.prebuilt.ToolNode([add, multiply, get_weather]))
        return _shown(graph.invoke(state))

    expected = run(lg)
    assert [m[1] for m in expected["messages"][2:]] == ["3", "12", "It's always sunny in Paris"]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_async_tools_run_concurrently_under_ainvoke(lib: Lib, lg: Lib) -> None:
    started: list[str] = []

    @tool
    async def slow_echo(text: str) -> str:
        """Echo after the other call has started."""
        started.append(text)
        while len(started) < 2:  # both calls must be in flight at once
            await asyncio.sleep(0)
        return text.upper()

    state = {"messages": [asks(call("slow_echo", "1", text="a"), call("slow_echo", "2", text="b"))]}

    async def run(library: Lib) -> Any:
        started.clear()
        return _shown(await _alone(library, library.prebuilt.ToolNode([slow_echo])).ainvoke(state))

    expected = await run(lg)
    assert await run(lib) == expected


def test_a_call_to_an_unknown_tool_is_answered_with_an_error(lib: Lib, lg: Lib) -> None:
    state = {"messages": [asks(call("divide", "x", a=1, b=0))]}

    def run(library: Lib) -> Any:
        return _shown(_alone(library, library.prebuilt.ToolNode([add, multiply])).invoke(state))

    expected = run(lg)
    assert expected["messages"][-1][4] == "error"
    assert run(lib) == expected


@tool
def fragile(kind: str) -> str:
    """Fails with the exception named by `kind`."""
    raise {"value": ValueError, "key": KeyError, "type": TypeError}[kind]("broken " + kind)


def _value_handler(error: ValueError) -> str:
    return f"handled {error}"


def _any_handler(error):  # unannotated: handles every exception
    return f"caught {type(error).__name__}"


HANDLERS: dict[str, Any] = {
    "default": None,
    "true": True,
    "false": False,
    "text": "Tool failed; try something else.",
    "typed handler": _value_handler,
    "untyped handler": _any_handler,
    "class": ValueError,
    "tuple": (KeyError, TypeError),
}


@pytest.mark.parametrize("kind", ["value", "key", "type"])
@pytest.mark.parametrize("handler", list(HANDLERS))
def test_handle_tool_errors_in_each_form(lib: Lib, lg: Lib, handler: str, kind: str) -> None:
    state = {"messages": [asks(call("fragile", "1", kind=kind))]}

    def run(library: Lib) -> Any:
        options = {} if HANDLERS[handler] is None else {"handle_tool_errors": HANDLERS[handler]}
        graph = _alone(library, library.prebuilt.ToolNode([fragile], **options))
        return outcome(lambda: _shown(graph.invoke(state)))

    assert run(lib) == run(lg)


@pytest.mark.parametrize("handler", ["default", "false"])
def test_bad_arguments_from_the_model(lib: Lib, lg: Lib, handler: str) -> None:
    state = {"messages": [asks(call("add", "1", a="one", b=2))]}

    def run(library: Lib) -> Any:
        options = {} if HANDLERS[handler] is None else {"handle_tool_errors": HANDLERS[handler]}
        graph = _alone(library, library.prebuilt.ToolNode([add], **options))
        return outcome(lambda: _shown(graph.invoke(state)))

    expected = run(lg)
    assert run(lib) == expected


def test_injected_state_store_less_tools_and_tool_call_id(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        injected_state = library.prebuilt.InjectedState

        @tool
        def whole(question: str, state: Annotated[dict, injected_state]) -> str:
            """Counts the messages."""
            return f"{question}: {len(state['messages'])} messages, user {state['user']}"

        @tool
        def one_key(user: Annotated[str, injected_state("user")],
                    call_id: Annotated[str, InjectedToolCallId]) -> str:
            """Greets the user."""
            return f"hello {user} from {call_id}"

        class State(library.MessagesState):
            user: str

        graph = _alone(library, library.prebuilt.ToolNode([whole, one_key]), State)
        schema = whole.tool_call_schema.model_json_schema()
        state = {"user": "ada", "messages": [asks(call("whole", "w", question="q"),
                                                  call("one_key", "k", user="forged"))]}
        return sorted(schema["properties"]), _shown(graph.invoke(state))

    expected = run(lg)
    assert expected[0] == ["question"]
    assert run(lib) == expected


def test_custom_messages_key(lib: Lib, lg: Lib) -> None:
    state = {"chat": [asks(call("add", "1", a=1, b=1))]}

    def run(library: Lib) -> Any:
        class State(TypedDict):
            chat: Annotated[list, library.add_messages]

        graph = _alone(library, library.prebuilt.ToolNode([add], messages_key="chat"), State)
        return _shown(graph.invoke(state)), library.prebuilt.tools_condition(state, "chat")

    assert run(lib) == run(lg)


@pytest.mark.parametrize("last", ["tool calls", "answer"])
def test_tools_condition_routes_on_the_last_message(lib: Lib, lg: Lib, last: str) -> None:
    message = asks(call("add", "1", a=1, b=1)) if last == "tool calls" else AIMessage("hi")

    def run(library: Lib) -> Any:
        cond = library.prebuilt.tools_condition
        return cond({"messages": [message]}), cond([message]), outcome(lambda: cond({}))

    assert run(lib) == run(lg)



def _hand_built(library: Lib, responses: list[Any], tools: list[Any]) -> Any:
    """The agent of LangGraph's tutorial: a model node, a ToolNode, tools_condition."""
    llm = model(*responses).bind_tools(tools)

    def chatbot(state: dict) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    builder = library.StateGraph(library.MessagesState)
    builder.add_node("chatbot", chatbot)
    builder.add_node("tools", library.prebuilt.ToolNode(tools))
    builder.add_edge(library.START, "chatbot")
    builder.add_conditional_edges("chatbot", library.prebuilt.tools_condition)
    builder.add_edge("tools", "chatbot")
    return builder.compile(checkpointer=library.InMemorySaver())


def test_hand_built_agent_with_tools_condition(lib: Lib, lg: Lib) -> None:
    responses = [asks(call("add", "1", a=2, b=3), call("multiply", "2", a=2, b=3)),
                 "5 and 6", asks(call("get_weather", "3", city="Oslo")), "sunny"]
    config = {"configurable": {"thread_id": "t"}}

    def run(library: Lib) -> Any:
        graph = _hand_built(library, responses, [add, multiply, get_weather])
        first = list(graph.stream({"messages": [("user", "sums")]}, config,
                                  stream_mode="updates"))
        second = graph.invoke({"messages": [("user", "weather?")]}, config)
        return [repr(_chunk(c)) for c in first], views(second["messages"])

    expected = run(lg)
    assert expected[1][-1][1] == "sunny"
    assert run(lib) == expected


def _chunk(chunk: dict) -> Any:
    ((node, update),) = chunk.items()
    return node, {k: views(v) for k, v in update.items()}


def test_a_tool_answering_with_a_command_updates_state_and_routes(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        command = library.Command

        @tool
        def set_user(name: str, call_id: Annotated[str, InjectedToolCallId]) -> Any:
            """Remember the user's name and hand over to the greeter."""
            return command(update={"user": name, "messages": [
                ToolMessage(f"user is {name}", tool_call_id=call_id)]}, goto="greet")

        class State(library.MessagesState):
            user: str

        def greet(state: dict) -> dict:
            return {"messages": [AIMessage(f"hello {state['user']}")]}

        builder = library.StateGraph(State)
        builder.add_node("tools", library.prebuilt.ToolNode([set_user]))
        builder.add_node("greet", greet)
        builder.add_edge(library.START, "tools")
        graph = builder.compile()
        result = graph.invoke({"messages": [asks(call("set_user", "c1", name="ada"))]})
        return result["user"], views(result["messages"])

    expected = run(lg)
    assert expected[0] == "ada"
    assert run(lib) == expected
