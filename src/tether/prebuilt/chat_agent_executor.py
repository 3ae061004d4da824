"""`create_react_agent`: a chat model that calls tools in a loop until it answers, wired as a
graph (LangGraph's names, signature and graph shape), and the agent's state schemas."""

from __future__ import annotations

import typing
import warnings
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel

from tether.constants import END
from tether.graph import StateGraph
from tether.graph.message import add_messages
from tether.prebuilt.model_node import AgentModel, Prompt, needs_tools_bound, state_value
from tether.prebuilt.tool_node import ToolNode
from tether.types import Send

StructuredResponse = dict[str, Any] | BaseModel
StructuredResponseSchema = dict[str, Any] | type[BaseModel]


class AgentState(TypedDict):
    """The state of the agent: its messages (and the steps it has left)."""

    messages: Annotated[Sequence[BaseMessage], add_messages]
    remaining_steps: NotRequired[int]


class AgentStatePydantic(BaseModel):
    """`AgentState` as a pydantic model."""

    messages: Annotated[Sequence[BaseMessage], add_messages]
    remaining_steps: int = 25


class AgentStateWithStructuredResponse(AgentState):
    """`AgentState` with the structured response of `response_format`."""

    structured_response: StructuredResponse


class AgentStateWithStructuredResponsePydantic(AgentStatePydantic):
    """`AgentStatePydantic` with the structured response of `response_format`."""

    structured_response: StructuredResponse


def create_react_agent(
    model: Any,
    tools: Sequence[BaseTool | Callable[..., Any] | dict[str, Any]] | ToolNode,
    *,
    prompt: Prompt | None = None,
    response_format: StructuredResponseSchema | tuple[str, StructuredResponseSchema] | None = None,
    pre_model_hook: Any = None,
    post_model_hook: Any = None,
    state_schema: type[Any] | None = None,
    context_schema: type[Any] | None = None,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    debug: bool = False,
    version: Literal["v1", "v2"] = "v2",
    name: str | None = None,
    **deprecated_kwargs: Any,
) -> Any:
    """A compiled graph in which the model (`agent` node) and the tools (`tools` node) take
    turns until the model answers without tool calls.

    Args:
        model: a chat model; a `"provider:model"` string (needs the `langchain` package); or
            `(state, runtime) -> model`, sync or async, to choose one per call.
        tools: tools (functions, `BaseTool`s, provider built-in tool dicts) or a `ToolNode`.
        prompt: a system text or `SystemMessage` put first, or a callable/Runnable from the
            state to the model's input.
        response_format: a schema (or `(prompt, schema)`): after the loop the model is asked
            once more for a structured answer, kept under `structured_response`.
        pre_model_hook: a node run before each model call (it may set `llm_input_messages`).
        post_model_hook: a node run after each model call (`version="v2"`).
        state_schema: the state; it must have `messages` and `remaining_steps`.
        version: `"v1"` runs all the calls of a message in one `tools` task; `"v2"` sends each
            call to a `tools` task of its own.
        checkpointer, store, interrupt_before, interrupt_after, name: as for `compile()`.

    Raises:
        ValueError: an unknown version, a state schema missing a key, or a model bound to
            other tools.
    """
    context_schema = _context_schema(context_schema, deprecated_kwargs)
    if version not in ("v1", "v2"):
        raise ValueError(f"Invalid version {version}. Supported versions are 'v1' and 'v2'.")
    state_schema = _state_schema(state_schema, response_format)
    builtin: list[dict[str, Any]] = []
    if isinstance(tools, ToolNode):
        tool_node = tools
    else:
        builtin = [t for t in tools if isinstance(t, dict)]
        tool_node = ToolNode([t for t in tools if not isinstance(t, dict)])
    tool_list = list(tool_node.tools_by_name.values())
    pydantic_state = isinstance(state_schema, type) and issubclass(state_schema, BaseModel)
    agent = AgentModel(
        _static_model(model, tool_list, builtin), prompt, name=name,
        uses_llm_input=pre_model_hook is not None, pydantic_state=pydantic_state,
        steps_guard=_steps_guard({t.name for t in tool_list if t.return_direct}),
        response_format=response_format,
    )
    builder = StateGraph(state_schema, context_schema=context_schema)
    builder.add_node("agent", agent.call_model,
                     input_schema=_model_input_schema(state_schema, pre_model_hook))
    entry = "agent"
    if pre_model_hook is not None:
        builder.add_node("pre_model_hook", pre_model_hook)
        builder.add_edge("pre_model_hook", "agent")
        entry = "pre_model_hook"
    builder.set_entry_point(entry)
    if post_model_hook is not None:
        builder.add_node("post_model_hook", post_model_hook)
        builder.add_edge("agent", "post_model_hook")
    if response_format is not None:
        builder.add_node("generate_structured_response", agent.structured_response)
    if tool_list:
        _wire_tools(builder, tool_node, entry, version, post_hook=post_model_hook is not None,
                    structured=response_format is not None)
    elif response_format is not None:
        builder.add_edge("post_model_hook" if post_model_hook is not None else "agent",
                         "generate_structured_response")
    del debug
    return builder.compile(checkpointer=checkpointer, store=store,
                           interrupt_before=interrupt_before, interrupt_after=interrupt_after,
                           name=name)


def _context_schema(context_schema: type[Any] | None,
                    deprecated_kwargs: dict[str, Any]) -> type[Any] | None:
    config_schema = deprecated_kwargs.pop("config_schema", None)
    if deprecated_kwargs:
        raise TypeError(
            f"create_react_agent() got unexpected keyword arguments: {deprecated_kwargs}")
    if config_schema is not None:
        warnings.warn("`config_schema` is deprecated and will be removed. Please use "
                      "`context_schema` instead.", DeprecationWarning, stacklevel=3)
        return context_schema or config_schema
    return context_schema


def _state_schema(state_schema: type[Any] | None, response_format: Any) -> type[Any]:
    if state_schema is None:
        return AgentStateWithStructuredResponse if response_format is not None else AgentState
    required = {"messages", "remaining_steps"}
    if response_format is not None:
        required.add("structured_response")
    missing = required - set(typing.get_type_hints(state_schema))
    if missing:
        raise ValueError(f"Missing required key(s) {missing} in state_schema")
    return state_schema


def _static_model(model: Any, tools: list[BaseTool], builtin: list[dict[str, Any]]) -> Any:
    """The model with the tools bound (a model function is left to bind its own)."""
    if callable(model) and not isinstance(model, str) and not hasattr(model, "ainvoke"):
        return model
    if isinstance(model, str):
        try:
            from langchain.chat_models import (  # type: ignore[import-not-found,unused-ignore]
                init_chat_model,
            )
        except ImportError:
            raise ImportError("Please install langchain (`pip install langchain`) to use "
                              "'<provider>:<model>' string syntax for `model` parameter."
                              ) from None
        model = init_chat_model(model)
    if needs_tools_bound(model, tools, len(builtin)) and (tools or builtin):
        model = model.bind_tools([*tools, *builtin])
    return model


def _steps_guard(return_direct: set[str]) -> Callable[[Any, BaseMessage], bool]:
    def out_of_steps(state: Any, response: BaseMessage) -> bool:
        calls = response.tool_calls if isinstance(response, AIMessage) else []
        remaining = state_value(state, "remaining_steps")
        if remaining is None:
            return False
        all_direct = isinstance(response, AIMessage) and all(
            c["name"] in return_direct for c in calls)
        return (remaining < 1 and all_direct) or (remaining < 2 and bool(calls))

    return out_of_steps


def _model_input_schema(state_schema: type[Any], pre_model_hook: Any) -> type[Any] | None:
    if pre_model_hook is None:
        return state_schema
    if issubclass(state_schema, BaseModel):
        from pydantic import create_model

        made: type[Any] = create_model("CallModelInputSchema",
                                       llm_input_messages=(list[AnyMessage], ...),
                                       __base__=state_schema)
        return made

    class CallModelInputSchema(state_schema):  # type: ignore[misc]
        llm_input_messages: list[AnyMessage]

    return CallModelInputSchema


def _wire_tools(builder: StateGraph[Any], tool_node: ToolNode, entry: str, version: str, *,
                post_hook: bool, structured: bool) -> None:
    builder.add_node("tools", tool_node)
    after_model = "post_model_hook" if post_hook else "tools"
    agent_paths = [after_model]
    if not post_hook:
        agent_paths.append("generate_structured_response" if structured else END)

    def should_continue(state: Any) -> str | list[Send]:
        last = state_value(state, "messages")[-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            if post_hook:
                return "post_model_hook"
            return "generate_structured_response" if structured else END
        if version == "v1":
            return "tools"
        if post_hook:
            return "post_model_hook"
        return _sends(last.tool_calls, state)

    builder.add_conditional_edges("agent", should_continue, path_map=agent_paths)
    if post_hook:
        builder.add_conditional_edges(
            "post_model_hook", _after_post_hook(entry, structured),
            path_map=[entry, "tools", "generate_structured_response" if structured else END])
    return_direct = {t.name for t in tool_node.tools_by_name.values() if t.return_direct}
    if return_direct:
        builder.add_conditional_edges("tools", _after_tools(entry, return_direct),
                                      path_map=[entry, END])
    else:
        builder.add_edge("tools", entry)


def _sends(calls: Sequence[Any], state: Any) -> list[Send]:
    return [Send("tools", {"__type": "tool_call_with_context", "tool_call": call, "state": state})
            for call in calls]


def _after_post_hook(entry: str, structured: bool) -> Callable[[Any], str | list[Send]]:
    def route(state: Any) -> str | list[Send]:
        messages = state_value(state, "messages")
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        last_ai = next(m for m in reversed(messages) if isinstance(m, AIMessage))
        pending = [c for c in last_ai.tool_calls if c["id"] not in answered]
        if pending:
            return _sends(pending, state)
        if isinstance(messages[-1], ToolMessage):
            return entry
        return "generate_structured_response" if structured else END

    return route


def _after_tools(entry: str, return_direct: set[str]) -> Callable[[Any], str]:
    def route(state: Any) -> str:
        message: Any = None
        for message in reversed(state_value(state, "messages")):
            if not isinstance(message, ToolMessage):
                break
            if message.name in return_direct:
                return END
        if isinstance(message, AIMessage) and any(
                c["name"] in return_direct for c in message.tool_calls):
            return END
        return entry

    return route


create_tool_calling_executor = create_react_agent

__all__ = [
    "AgentState",
    "AgentStatePydantic",
    "AgentStateWithStructuredResponse",
    "AgentStateWithStructuredResponsePydantic",
    "StructuredResponse",
    "StructuredResponseSchema",
    "create_react_agent",
    "create_tool_calling_executor",
]
