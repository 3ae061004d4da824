"""`create_react_agent`: the same agent program gives the same messages, streams, structured
responses, pauses and errors on LangGraph and tether."""

import dataclasses
import importlib
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from ._agents import (
    LANGGRAPH_DEPRECATIONS,
    add,
    asks,
    call,
    get_weather,
    model,
    multiply,
    updates_view,
    views,
)
from ._support import Lib, aoutcome, outcome, thread

pytestmark = pytest.mark.filterwarnings(LANGGRAPH_DEPRECATIONS)

QUESTION = {"messages": [("user", "what is (2+3)*4, and the weather in Rome?")]}


def arithmetic_script() -> list[Any]:
    return [
        asks(call("add", "c1", a=2, b=3), call("get_weather", "c2", city="Rome"),
             text="Adding first."),
        asks(call("multiply", "c3", a=5, b=4)),
        "20, and it is sunny in Rome.",
    ]


def test_basic_agent_values_and_updates(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        agent = library.prebuilt.create_react_agent(
            model(*arithmetic_script()), [add, multiply, get_weather], prompt="Be brief.")
        result = agent.invoke(QUESTION)
        again = library.prebuilt.create_react_agent(
            model(*arithmetic_script()), [add, multiply, get_weather], prompt="Be brief.")
        return views(result["messages"]), updates_view(again.stream(QUESTION))

    expected = run(lg)
    assert [m[0] for m in expected[0]] == ["human", "ai", "tool", "tool", "ai", "tool", "ai"]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_basic_agent_under_ainvoke_and_astream(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> Any:
        agent = library.prebuilt.create_react_agent(
            model(*arithmetic_script()), [add, multiply, get_weather])
        return [views(chunk["messages"])
                async for chunk in agent.astream(QUESTION, stream_mode="values")]

    expected = await run(lg)
    assert len(expected) == 6
    assert await run(lib) == expected


def test_the_model_sees_the_prompt_and_every_tool_result(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        llm = model(*arithmetic_script())
        library.prebuilt.create_react_agent(llm, [add, multiply, get_weather],
                                            prompt="Be brief.").invoke(QUESTION)
        return [views(given) for given in llm.calls]

    expected = run(lg)
    assert expected[0][0][:2] == ("system", "Be brief.")
    assert run(lib) == expected


async def _async_prompt(state: dict) -> list[Any]:
    return [SystemMessage("async prompt"), *state["messages"]]


PROMPTS: dict[str, Any] = {
    "none": None,
    "text": "You are terse.",
    "system message": SystemMessage("You are kind."),
    "callable": lambda state: [SystemMessage("from a function"), *state["messages"][-1:]],
    "async callable": _async_prompt,
    "runnable": ChatPromptTemplate.from_messages(
        [("system", "template prompt"), ("placeholder", "{messages}")]),
}


@pytest.mark.anyio
@pytest.mark.parametrize("prompt", list(PROMPTS))
async def test_each_prompt_form_reaches_the_model(lib: Lib, lg: Lib, prompt: str) -> None:
    async def run(library: Lib) -> Any:
        llm = model(asks(call("add", "c1", a=1, b=1)), "two")
        agent = library.prebuilt.create_react_agent(llm, [add], prompt=PROMPTS[prompt])
        result = await agent.ainvoke({"messages": [("user", "1+1?")]})
        return [views(given) for given in llm.calls], views(result["messages"])

    assert await run(lib) == await run(lg)


class Weather(BaseModel):
    """The weather, structured."""

    city: str
    sunny: bool


WEATHER_JSON = {
    "title": "Weather",
    "description": "The weather, structured.",
    "type": "object",
    "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}},
    "required": ["city", "sunny"],
}

FORMATS: dict[str, Any] = {
    "pydantic": Weather,
    "json schema": WEATHER_JSON,
    "with a prompt": ("Answer in the Weather schema.", Weather),
}


@pytest.mark.parametrize("form", list(FORMATS))
def test_response_format_adds_a_structured_response(lib: Lib, lg: Lib, form: str) -> None:
    def run(library: Lib) -> Any:
        llm = model(asks(call("get_weather", "c1", city="Rome")), "Sunny in Rome.",
                    asks(call("Weather", "s1", city="Rome", sunny=True)))
        agent = library.prebuilt.create_react_agent(llm, [get_weather],
                                                    response_format=FORMATS[form])
        result = agent.invoke({"messages": [("user", "weather in Rome?")]})
        structured = result["structured_response"]
        shown = structured.model_dump() if isinstance(structured, BaseModel) else structured
        return shown, views(result["messages"]), views(llm.calls[-1])

    expected = run(lg)
    assert expected[0] == {"city": "Rome", "sunny": True}
    assert run(lib) == expected


def _trim(state: dict) -> dict:
    """A pre-model hook: the model sees only the last three messages."""
    return {"llm_input_messages": state["messages"][-3:]}


def _reset(state: dict) -> dict:
    """A pre-model hook that rewrites the history it is given."""
    kept = [m for m in state["messages"] if m.type != "system"]
    return {"messages": [RemoveMessage(id="__remove_all__"), *kept]}


def _post(state: dict) -> dict:
    """A post-model hook that signs the model's answer."""
    last = state["messages"][-1]
    if last.tool_calls:
        return {}
    return {"messages": [AIMessage(id=last.id, content=last.content + " (checked)")]}


@pytest.mark.parametrize("pre", [_trim, _reset], ids=["llm_input_messages", "messages"])
def test_hooks_with_a_checkpointer_and_interrupt_before_tools(lib: Lib, lg: Lib, pre) -> None:
    def run(library: Lib) -> Any:
        llm = model(*arithmetic_script())
        agent = library.prebuilt.create_react_agent(
            llm, [add, multiply, get_weather], pre_model_hook=pre, post_model_hook=_post,
            checkpointer=library.InMemorySaver(), interrupt_before=["tools"])
        config = thread("hooks")
        paused = [updates_view(agent.stream(QUESTION, config))]
        nexts = [tuple(agent.get_state(config).next)]
        while agent.get_state(config).next:
            paused.append(updates_view(agent.stream(None, config)))
            nexts.append(tuple(agent.get_state(config).next))
        final = agent.get_state(config)
        return (paused, nexts, views(final.values["messages"]),
                [views(given) for given in llm.calls])

    expected = run(lg)
    assert expected[1][0] == ("tools", "tools")
    assert expected[2][-1][1] == "20, and it is sunny in Rome. (checked)"
    assert run(lib) == expected


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_both_versions_run_the_same_conversation(lib: Lib, lg: Lib, version: str) -> None:
    def run(library: Lib) -> Any:
        agent = library.prebuilt.create_react_agent(
            model(*arithmetic_script()), [add, multiply, get_weather], version=version)
        return views(agent.invoke(QUESTION)["messages"]), updates_view(
            library.prebuilt.create_react_agent(
                model(*arithmetic_script()), [add, multiply, get_weather],
                version=version).stream(QUESTION))

    assert run(lib) == run(lg)


def test_a_tool_node_with_error_handling_can_be_given(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        node = library.prebuilt.ToolNode([add], handle_tool_errors="No luck.")
        agent = library.prebuilt.create_react_agent(
            model(asks(call("add", "c1", a="x", b=1)), "sorry"), node)
        return views(agent.invoke({"messages": [("user", "x+1")]})["messages"])

    expected = run(lg)
    assert expected[2][1] == "No luck."
    assert run(lib) == expected


def test_a_return_direct_tool_ends_the_run(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        from langchain_core.tools import tool

        @tool(return_direct=True)
        def lookup(key: str) -> str:
            """Look a key up and answer with it directly."""
            return f"value of {key}"

        agent = library.prebuilt.create_react_agent(
            model(asks(call("lookup", "c1", key="k"), call("add", "c2", a=1, b=2))),
            [lookup, add])
        return views(agent.invoke({"messages": [("user", "k?")]})["messages"])

    expected = run(lg)
    assert expected[-1][0] == "tool"
    assert run(lib) == expected


def test_name_marks_the_agents_messages(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        agent = library.prebuilt.create_react_agent(
            model(asks(call("add", "c1", a=1, b=2)), "3"), [add], name="calculator")
        return agent.name, views(agent.invoke({"messages": [("user", "1+2")]})["messages"])

    expected = run(lg)
    assert expected[1][-1][2] == "calculator"
    assert run(lib) == expected


def test_an_agent_without_tools_is_one_model_call(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        agent = library.prebuilt.create_react_agent(model("hello"), [])
        return views(agent.invoke({"messages": [("user", "hi")]})["messages"])

    assert run(lib) == run(lg)


def test_a_custom_state_schema_with_an_extra_key(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        executor = importlib.import_module(f"{library.name}.prebuilt.chat_agent_executor")

        class State(executor.AgentState):
            user: str

        def prompt(state: dict) -> list[Any]:
            return [SystemMessage(f"The user is {state['user']}."), *state["messages"]]

        llm = model("Hi Ada.")
        agent = library.prebuilt.create_react_agent(llm, [add], state_schema=State,
                                                    prompt=prompt)
        result = agent.invoke({"messages": [("user", "hi")], "user": "Ada"})
        return result["user"], views(result["messages"]), views(llm.calls[0])

    assert run(lib) == run(lg)


def test_a_state_schema_missing_required_keys_is_refused(lib: Lib, lg: Lib) -> None:
    class Bare(TypedDict):
        messages: list

    def run(library: Lib) -> Any:
        return outcome(lambda: library.prebuilt.create_react_agent(
            model("x"), [add], state_schema=Bare))

    expected = run(lg)
    assert expected[0] == "raised"
    assert run(lib) == expected


@dataclasses.dataclass
class Settings:
    concise: bool


@pytest.mark.anyio
@pytest.mark.parametrize("concise", [True, False])
async def test_a_model_chosen_per_call_from_the_context(lib: Lib, lg: Lib,
                                                        concise: bool) -> None:
    async def run(library: Lib) -> Any:
        short, long = model("Yes."), model("Yes, and here is why...")

        def choose(state: dict, runtime: Any) -> Any:
            chosen = short if runtime.context.concise else long
            return chosen.bind_tools([add])

        agent = library.prebuilt.create_react_agent(choose, [add], context_schema=Settings)
        result = await agent.ainvoke({"messages": [("user", "?")]},
                                     context=Settings(concise=concise))
        return views(result["messages"])

    assert await run(lib) == await run(lg)


def test_a_model_bound_to_other_tools_is_refused(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        bound = model("x").bind_tools([multiply])
        return outcome(lambda: library.prebuilt.create_react_agent(bound, [add]))

    expected = run(lg)
    assert expected[0] == "raised"
    assert run(lib) == expected


@pytest.mark.anyio
async def test_a_conversation_across_turns_on_a_thread(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> Any:
        llm = model(asks(call("add", "c1", a=1, b=1)), "2", "Yes, 2.")
        agent = library.prebuilt.create_react_agent(llm, [add],
                                                    checkpointer=library.InMemorySaver())
        config = thread("chat")
        await agent.ainvoke({"messages": [HumanMessage("1+1?")]}, config)
        second = await aoutcome(lambda: agent.ainvoke({"messages": [("user", "sure?")]},
                                                      config))
        state = await agent.aget_state(config)
        return second[0], views(state.values["messages"]), views(llm.calls[-1])

    expected = await run(lg)
    assert expected[1][-1][1] == "Yes, 2."
    assert await run(lib) == expected


def test_the_agent_graph_has_langgraphs_nodes_and_edges(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        agent = library.prebuilt.create_react_agent(
            model("x"), [add], pre_model_hook=_trim, response_format=Weather)
        drawn = agent.get_graph()
        return sorted(drawn.nodes), sorted((e.source, e.target) for e in drawn.edges)

    assert run(lib) == run(lg)


MODULES = {
    "prebuilt": None,
    "prebuilt.tool_node": ["InjectedState", "InjectedStore", "ToolNode", "ToolRuntime",
                           "tools_condition", "ToolCallRequest", "msg_content_output",
                           "ToolInvocationError"],
    "prebuilt.chat_agent_executor": None,
    "prebuilt.tool_validator": ["ValidationNode"],
    "prebuilt.interrupt": ["HumanInterrupt", "HumanInterruptConfig", "ActionRequest",
                           "HumanResponse"],
}
NOT_PORTED = {"ToolCallTransformer"}  # LangGraph's v2 stream protocol (`stream_mode="tools"`)


@pytest.mark.parametrize("module", list(MODULES))
def test_every_public_name_of_langgraph_prebuilt_exists(module: str) -> None:
    theirs = importlib.import_module(f"langgraph.{module}")
    ours = importlib.import_module(f"tether.{module}")
    names = MODULES[module] or list(theirs.__all__)
    missing = [n for n in names if n not in NOT_PORTED and not hasattr(ours, n)]
    assert missing == []


class Pick(BaseModel):
    """A number between 1 and 10."""

    number: int


def test_validation_node_answers_each_call_with_its_validation(lib: Lib, lg: Lib) -> None:
    calls = [call("Pick", "ok", number=3), call("Pick", "bad", number="three")]

    def run(library: Lib) -> Any:
        node = library.prebuilt.ValidationNode([Pick])
        builder = library.StateGraph(library.MessagesState)
        builder.add_node("validate", node)
        builder.add_edge(library.START, "validate")
        result = builder.compile().invoke({"messages": [asks(*calls)]})
        return [(m.content.splitlines()[0], m.additional_kwargs)
                for m in result["messages"][1:]]

    expected = run(lg)
    assert expected[0] == ('{"number":3}', {})
    assert run(lib) == expected
