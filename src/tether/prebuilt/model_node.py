"""The model side of `create_react_agent`: the prompt, the model (fixed, or chosen per call from
the state and runtime), the `agent` node that calls it, and the node that asks it for the
structured response."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from itertools import chain, compress
from operator import attrgetter, is_, itemgetter
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableBinding, RunnableSequence
from langchain_core.tools import BaseTool
from pydantic import BaseModel

from tether.runtime import Runtime

Prompt = SystemMessage | str | Callable[[Any], Any] | Runnable[Any, Any]
"""What `prompt=` takes: a system text or message put before the messages, or a callable or
Runnable that turns the state into the model's input."""

NEED_MORE_STEPS = "Sorry, need more steps to process this request."


def state_value(state: Any, key: str, default: Any = None) -> Any:
    """A key of a dict state or an attribute of an object state."""
    if isinstance(state, dict):
        return state.get(key, default)
    return getattr(state, key, default)


def check_chat_history(messages: Sequence[BaseMessage]) -> None:
    """Refuse to call the model with a tool call that has no `ToolMessage`.

    Raises:
        ValueError: naming the first unanswered calls (LangGraph's message and error code).
    """
    if _all_answered(messages):  # the usual history, checked in C
        return
    answered: set[str] = set()
    calls: list[Any] = []
    for message in messages:  # one pass over the history, to name what is unanswered
        if isinstance(message, ToolMessage):
            answered.add(message.tool_call_id)
        elif isinstance(message, AIMessage) and message.tool_calls:
            calls.extend(message.tool_calls)
    dangling = [call for call in calls if call["id"] not in answered]
    if dangling:
        raise ValueError(
            "Found AIMessages with tool_calls that do not have a corresponding ToolMessage. "
            f"Here are the first few of those tool calls: {dangling[:3]}.\n\n"
            "Every tool call (LLM requesting to call a tool) in the message history MUST have a "
            "corresponding ToolMessage (result of a tool invocation to return to the LLM) - "
            "this is required by most LLM providers.\n"
            "For troubleshooting, visit: https://docs.langchain.com/oss/python/langgraph/"
            "errors/INVALID_CHAT_HISTORY")


_PLAIN = frozenset({AIMessage, ToolMessage, HumanMessage, SystemMessage})
"""Message classes none of which but `AIMessage` is an `AIMessage` and none but `ToolMessage` a
`ToolMessage`: in a history of these alone, a class compared by identity answers as
`isinstance` would."""
_IS_AI, _IS_TOOL = partial(is_, AIMessage), partial(is_, ToolMessage)
_CALLS, _CALL_ID, _ID = attrgetter("tool_calls"), attrgetter("tool_call_id"), itemgetter("id")


def _all_answered(messages: Sequence[BaseMessage]) -> bool:
    """Whether every tool call of a history of the usual message classes has its
    `ToolMessage`, with no Python step per message (the check runs before every model call,
    over the whole history). False also when the history has other classes: then it is asked
    message by message."""
    kinds = list(map(type, messages))
    if not _PLAIN.issuperset(kinds):
        return False
    answered = set(map(_CALL_ID, compress(messages, map(_IS_TOOL, kinds))))
    asked = chain.from_iterable(map(_CALLS, compress(messages, map(_IS_AI, kinds))))
    return answered.issuperset(map(_ID, asked))


def chat_model_of(model: Any) -> BaseChatModel:
    """The chat model inside a model, a `bind_tools(...)` binding or a sequence.

    Raises:
        TypeError: there is no chat model in it.
    """
    if isinstance(model, RunnableSequence):
        model = next((s for s in model.steps if isinstance(s, (RunnableBinding, BaseChatModel))),
                     model)
    if isinstance(model, RunnableBinding):
        model = model.bound
    if not isinstance(model, BaseChatModel):
        raise TypeError("Expected `model` to be a ChatModel or RunnableBinding (e.g. "
                        f"model.bind_tools(...)), got {type(model)}")
    return model


def needs_tools_bound(model: Any, tools: Sequence[BaseTool], builtin: int = 0) -> bool:
    """Whether `model` still needs `bind_tools`; checks a binding it already has.

    Raises:
        ValueError: the model is bound to other tools than `tools`.
    """
    if isinstance(model, RunnableSequence):
        model = next((s for s in model.steps if isinstance(s, (RunnableBinding, BaseChatModel))),
                     model)
    if not isinstance(model, RunnableBinding) or "tools" not in model.kwargs:
        return True
    bound = model.kwargs["tools"]
    if len(tools) != len(bound) - builtin:
        raise ValueError("Number of tools in the model.bind_tools() and tools passed to "
                         f"create_react_agent must match Got {len(tools)} tools, expected "
                         f"{len(bound) - builtin}")
    names = set()
    for spec in bound:
        if spec.get("type") == "function":
            names.add(spec["function"]["name"])
        elif spec.get("name"):
            names.add(spec["name"])
    missing = {t.name for t in tools} - names
    if missing:
        raise ValueError(f"Missing tools '{missing}' in the model.bind_tools()")
    return False


class AgentModel:
    """The agent's model calls.

    Args:
        model: a chat model (or Runnable), or `(state, runtime) -> model` (sync or async).
        prompt: see `Prompt`.
        name: the agent's name, given to each of its messages.
        uses_llm_input: a pre-model hook may give the model `llm_input_messages`.
        pydantic_state: the state is a pydantic model (set attributes, not keys).
        steps_guard: `(state, response) -> bool`: True when the run is about to run out of
            steps and the model's answer must be replaced by `NEED_MORE_STEPS`.
        response_format: the structured response's schema, or `(system prompt, schema)`.
    """

    def __init__(self, model: Any, prompt: Prompt | None, *, name: str | None,
                 uses_llm_input: bool, pydantic_state: bool,
                 steps_guard: Callable[[Any, BaseMessage], bool],
                 response_format: Any = None) -> None:
        self.model = model
        self.dynamic = callable(model) and not isinstance(model, (str, Runnable))
        self.prompt = prompt
        self.name = name
        self.uses_llm_input = uses_llm_input
        self.pydantic_state = pydantic_state
        self.steps_guard = steps_guard
        self.response_format = response_format
        if prompt is not None and not isinstance(prompt, (str, SystemMessage, Runnable)) \
                and not callable(prompt):
            raise ValueError(f"Got unexpected type for `prompt`: {type(prompt)}")

    async def resolve(self, state: Any, runtime: Runtime[Any]) -> Any:
        """The model for this call (the fixed one, or the one the model function chose).

        Cancellation:
            An async model function is cancelled with the node; nothing is kept.
        """
        if not self.dynamic:
            return self.model
        chosen = self.model(state, runtime)
        return await chosen if inspect.isawaitable(chosen) else chosen

    async def model_input(self, state: Any, config: dict[str, Any]) -> Any:
        """The prompt applied to the state: what the model is given.

        Cancellation:
            A prompt runnable is cancelled with the node; nothing is kept.
        """
        prompt = self.prompt
        messages = list(state_value(state, "messages") or [])
        if prompt is None:
            return messages
        if isinstance(prompt, str):
            return [SystemMessage(content=prompt), *messages]
        if isinstance(prompt, SystemMessage):
            return [prompt, *messages]
        if isinstance(prompt, Runnable):
            return await prompt.ainvoke(state, cast("Any", config))
        made = prompt(state)
        return await made if inspect.isawaitable(made) else made

    async def call_model(self, state: Any, runtime: Runtime[Any],
                         config: dict[str, Any]) -> dict[str, Any]:
        """The `agent` node: one model call; its answer appended to the messages.

        Cancellation:
            Cancelling the node cancels the model call (an async model at its next await);
            nothing is written.
        """
        messages = state_value(state, "llm_input_messages") if self.uses_llm_input else None
        messages = messages or state_value(state, "messages")
        if messages is None:
            keys = "'llm_input_messages' or 'messages' key" if self.uses_llm_input \
                else "'messages' key"
            raise ValueError(f"Expected input to call_model to have {keys}, but got {state}")
        check_chat_history(messages)
        if self.pydantic_state:
            state.messages = messages
        else:
            state["messages"] = messages
        model = await self.resolve(state, runtime)
        response = await model.ainvoke(await self.model_input(state, config), config)
        response.name = self.name
        if self.steps_guard(state, response):
            response = AIMessage(id=response.id, content=NEED_MORE_STEPS)
        return {"messages": [response]}

    async def structured_response(self, state: Any, runtime: Runtime[Any],
                                  config: dict[str, Any]) -> dict[str, Any]:
        """The `generate_structured_response` node: the model asked once more, for the schema.

        Cancellation:
            Cancelling the node cancels the model call; nothing is written.
        """
        messages = list(state_value(state, "messages"))
        schema = self.response_format
        if isinstance(schema, tuple):
            system, schema = schema
            messages = [SystemMessage(content=system), *messages]
        structured = chat_model_of(await self.resolve(state, runtime)).with_structured_output(
            cast("dict[str, Any] | type[BaseModel]", schema))
        return {"structured_response": await structured.ainvoke(messages, cast("Any", config))}


__all__ = ["NEED_MORE_STEPS", "AgentModel", "Prompt", "chat_model_of", "check_chat_history",
           "needs_tools_bound", "state_value"]
