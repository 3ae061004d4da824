"""What the agent compat tests share: tools, scripts for the scripted model, and a view of
messages that both libraries must agree on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool

from tether.prebuilt.scripted import ScriptedChatModel

LANGGRAPH_DEPRECATIONS = "ignore::langgraph.warnings.LangGraphDeprecatedSinceV10"
"""LangGraph 1.x marks `create_react_agent` and `AgentState` deprecated (moved to `langchain`);
the programs under test still use them, as most published ones do."""


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"It's always sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


def call(tool_name: str, call_id: str, /, **args: Any) -> dict[str, Any]:
    """A tool call as a model writes it."""
    return {"name": tool_name, "args": args, "id": call_id, "type": "tool_call"}


def asks(*calls: dict[str, Any], text: str = "") -> AIMessage:
    """A model turn that calls tools."""
    return AIMessage(content=text, tool_calls=list(calls))


def model(*responses: AIMessage | str, **options: Any) -> ScriptedChatModel:
    """A fresh scripted model (each library gets its own: the script is consumed)."""
    return ScriptedChatModel(responses=list(responses), **options)


def view(message: Any) -> tuple[Any, ...]:
    """A message as both libraries must produce it (ids are random; tool call ids are not)."""
    if isinstance(message, dict):
        return ("dict", tuple(sorted((k, repr(v)) for k, v in message.items())))
    calls = tuple((c["name"], c["args"], c["id"]) for c in getattr(message, "tool_calls", ()))
    return (message.type, message.content, getattr(message, "name", None),
            getattr(message, "tool_call_id", None), getattr(message, "status", None), calls)


def views(messages: Iterable[BaseMessage]) -> list[tuple[Any, ...]]:
    """`view` of each message."""
    return [view(m) for m in messages]


def updates_view(chunks: Iterable[Any]) -> list[Any]:
    """`updates` chunks with messages viewed; consecutive chunks of one node (parallel tasks,
    which both libraries report in finish order) are sorted."""
    out: list[Any] = []
    for chunk in chunks:
        ((node, update),) = chunk.items()
        if isinstance(update, dict):
            shown: Any = {k: views(v) if isinstance(v, list) else v for k, v in update.items()}
        else:
            shown = update
        out.append((node, repr(shown)))
    grouped: list[Any] = []
    for item in out:
        if grouped and grouped[-1][0][0] == item[0]:
            grouped[-1].append(item)
        else:
            grouped.append([item])
    return [sorted(group) for group in grouped]
