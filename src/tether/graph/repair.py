"""Closing a conversation that a stopped run left open, so that the model is never handed a
tool call without its result: each unanswered call of the last assistant turn is answered with
`ToolMessage(status="error", content="Cancelled: <why>")`, and the text the model had streamed
when it was stopped is kept as an `AIMessage` whose `finish_reason` is `"cancelled"`.

Messages are LangChain's when the conversation's are (tether's light classes otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CANCELLED_FINISH_REASON = "cancelled"
"""`response_metadata["finish_reason"]` of an answer cut short by a stop."""


@dataclass(frozen=True, slots=True)
class PartialAnswer:
    """What a model had streamed of its answer when its node was stopped.

    Attributes:
        text: the text streamed so far (tool-call chunks are not kept: they are incomplete).
        id: the id of the streamed message, when the model gave one.
        name: the name the answer would have carried (an agent's name).
    """

    text: str
    id: str | None = None
    name: str | None = None


def open_calls(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """The tool calls of the last assistant turn that no `ToolMessage` after it answers.

    Only the open turn is closed: it is the one a stop leaves (an older unanswered call is a
    history the caller wrote, and an answer appended at the end would not follow its turn).
    """
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        calls = getattr(message, "tool_calls", None)
        if getattr(message, "type", None) == "ai" and calls:
            later = messages[index + 1:]
            if any(getattr(m, "type", None) != "tool" for m in later):
                return []
            answered = {getattr(m, "tool_call_id", None) for m in later}
            return [dict(call) for call in calls if call.get("id") not in answered]
        if getattr(message, "type", None) != "tool":
            return []
    return []


def closing_messages(messages: Sequence[Any], why: str,
                     partial: PartialAnswer | None = None) -> list[Any]:
    """The messages that close `messages` after a stop: an error answer per open tool call,
    then the partial answer (if any text was streamed).

    Args:
        messages: the conversation, with the results the stopped run kept already applied.
        why: the stop's reason, shown to the model after "Cancelled: ".
        partial: what the model had streamed when it was stopped.
    """
    kinds = _classes(messages)
    closing: list[Any] = [
        kinds.tool(content=f"Cancelled: {why}", tool_call_id=call["id"],
                   name=call.get("name"), status="error")
        for call in open_calls(messages)
    ]
    if partial is not None and partial.text:
        closing.append(kinds.ai(content=partial.text, id=partial.id, name=partial.name,
                                response_metadata={"finish_reason": CANCELLED_FINISH_REASON}))
    return closing


@dataclass(frozen=True, slots=True)
class _Classes:
    ai: Any
    tool: Any


def _classes(messages: Sequence[Any]) -> _Classes:
    if any(type(m).__module__.startswith("langchain_core") for m in messages):
        from langchain_core.messages import AIMessage, ToolMessage

        return _Classes(AIMessage, ToolMessage)
    from tether.messages import AIMessage as LightAI
    from tether.messages import ToolMessage as LightTool

    return _Classes(LightAI, LightTool)


__all__ = ["CANCELLED_FINISH_REASON", "PartialAnswer", "closing_messages", "open_calls"]
