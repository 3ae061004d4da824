"""`add_messages` and `MessagesState`: LangGraph's chat-history reducer.

With `langchain-core` installed, messages are LangChain's; otherwise tether's light classes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from tether.messages import RemoveMessage as LightRemove
from tether.messages import to_message

REMOVE_ALL_MESSAGES = "__remove_all__"


def _converters() -> tuple[Callable[[Any], list[Any]], tuple[Any, ...]]:
    try:
        from langchain_core.messages import RemoveMessage, convert_to_messages
        from langchain_core.messages.utils import message_chunk_to_message
    except ImportError:
        return (lambda items: [to_message(i) for i in items]), (LightRemove,)

    def convert(items: list[Any]) -> list[Any]:
        light = [i for i in items if _is_light(i)]
        if light:
            return [to_message(i) if _is_light(i) else message_chunk_to_message(
                convert_to_messages([i])[0]) for i in items]
        return [message_chunk_to_message(m) for m in convert_to_messages(items)]

    return convert, (RemoveMessage, LightRemove)


def _is_remove(message: Any, removes: tuple[Any, ...]) -> bool:
    return isinstance(message, removes)


def _is_light(value: Any) -> bool:
    return type(value).__module__ == "tether.messages"


def add_messages(left: Any, right: Any) -> list[Any]:
    """Merge two lists of messages: append new ones, replace those whose id matches, and drop
    those a `RemoveMessage` names. Messages without ids get one."""
    convert, removes = _converters()
    left_list: list[Any] = convert(left if isinstance(left, list) else [left])
    right_list: list[Any] = convert(right if isinstance(right, list) else [right])
    for message in left_list:
        if getattr(message, "id", None) is None:
            message.id = str(uuid.uuid4())
    cut: int | None = None
    for idx, message in enumerate(right_list):
        if getattr(message, "id", None) is None:
            message.id = str(uuid.uuid4())
        if _is_remove(message, removes) and message.id == REMOVE_ALL_MESSAGES:
            cut = idx
    if cut is not None:
        return right_list[cut + 1:]
    merged: list[Any] = list(left_list)
    index = {m.id: i for i, m in enumerate(merged)}
    doomed: set[str] = set()
    for message in right_list:
        at = index.get(message.id)
        if at is not None:
            if _is_remove(message, removes):
                doomed.add(message.id)
            else:
                doomed.discard(message.id)
                merged[at] = message
        else:
            if _is_remove(message, removes):
                raise ValueError(
                    f"Attempting to delete a message with an ID that doesn't exist ('{message.id}')"
                )
            index[message.id] = len(merged)
            merged.append(message)
    return [m for m in merged if m.id not in doomed]


class MessagesState(TypedDict):
    """A state with one key, `messages`, reduced by `add_messages`."""

    messages: Annotated[list[Any], add_messages]


__all__ = ["REMOVE_ALL_MESSAGES", "MessagesState", "add_messages"]
