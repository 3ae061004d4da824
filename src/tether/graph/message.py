"""`add_messages` and `MessagesState`: LangGraph's chat-history reducer.

With `langchain-core` installed, messages are LangChain's; otherwise tether's light classes.

The reducer runs on every write to a messages channel, with the whole history as `left`: a
message that is already a finished (non-chunk) message object is taken as it is, so only the
new items of a write are ever converted; the passes over the history (are its classes all
known, has every message an id, the id index) run in C, with no Python step per message.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from itertools import count
from operator import attrgetter
from typing import Annotated, Any, TypedDict

from tether.messages import BaseMessage as LightMessage
from tether.messages import RemoveMessage as LightRemove
from tether.messages import to_message

REMOVE_ALL_MESSAGES = "__remove_all__"

Convert = Callable[[list[Any]], list[Any]]


@functools.cache
def _converters() -> tuple[Convert, tuple[type[Any], ...]]:
    """How items become messages, and the classes of removals (imported once)."""
    try:
        from langchain_core.messages import (
            BaseMessage,
            BaseMessageChunk,
            RemoveMessage,
            convert_to_messages,
        )
        from langchain_core.messages.utils import message_chunk_to_message
    except ImportError:
        return _light_convert, (LightRemove,)

    plain: set[type[Any]] = set()  # classes seen to convert to themselves

    def is_ready(item: Any) -> bool:
        # A finished message converts to itself; a chunk, dict, tuple or str does not.
        kind = type(item)
        if kind in plain:
            return True
        if issubclass(kind, (BaseMessage, LightMessage)) \
                and not issubclass(kind, BaseMessageChunk):
            plain.add(kind)
            return True
        return False

    def one(item: Any) -> Any:
        if _is_light(item):
            return to_message(item)
        return message_chunk_to_message(convert_to_messages([item])[0])

    def convert(items: list[Any]) -> list[Any]:
        if plain.issuperset(map(type, items)):  # the usual history: every class seen (in C)
            return items
        for item in items:
            if type(item) not in plain and not is_ready(item):
                return [i if is_ready(i) else one(i) for i in items]
        return items

    return convert, (RemoveMessage, LightRemove)


def _light_convert(items: list[Any]) -> list[Any]:
    return [to_message(i) for i in items]


_ID = attrgetter("id")


def _without_id(messages: list[Any]) -> bool:
    """Whether a message of `messages` (converted: each has an `id`) has no id yet, asked
    in C (every write passes the whole history, which has its ids from the writes before)."""
    try:
        return None in map(_ID, messages)
    except AttributeError:  # a message class without `id`: asked one by one
        return True


def _is_light(value: Any) -> bool:
    return type(value).__module__ == "tether.messages"


def add_messages(left: Any, right: Any) -> list[Any]:
    """Merge two lists of messages: append new ones, replace those whose id matches, and drop
    those a `RemoveMessage` names. Messages without ids get one.

    Neither argument is changed (but for the ids given to messages that had none); the
    result is a new list.
    """
    convert, removes = _converters()
    left_list: list[Any] = convert(left if isinstance(left, list) else [left])
    right_list: list[Any] = convert(right if isinstance(right, list) else [right])
    if _without_id(left_list):
        for message in left_list:
            if getattr(message, "id", None) is None:
                message.id = str(uuid.uuid4())
    cut: int | None = None
    for idx, message in enumerate(right_list):
        if getattr(message, "id", None) is None:
            message.id = str(uuid.uuid4())
        if isinstance(message, removes) and message.id == REMOVE_ALL_MESSAGES:
            cut = idx
    if cut is not None:
        return right_list[cut + 1:]
    return _merge(left_list, right_list, removes)


def _merge(left_list: list[Any], right_list: list[Any], removes: tuple[type[Any], ...]
           ) -> list[Any]:
    """A new list: `left_list` with `right_list` applied by id (replace, append, remove)."""
    merged: list[Any] = list(left_list)
    index = dict(zip(map(_ID, merged), count()))  # (in C: the history is long, the write short)
    doomed: set[str] = set()
    for message in right_list:
        at = index.get(message.id)
        if at is not None:
            if isinstance(message, removes):
                doomed.add(message.id)
            else:
                doomed.discard(message.id)
                merged[at] = message
        else:
            if isinstance(message, removes):
                raise ValueError(
                    f"Attempting to delete a message with an ID that doesn't exist ('{message.id}')"
                )
            index[message.id] = len(merged)
            merged.append(message)
    if not doomed:
        return merged
    return [m for m in merged if m.id not in doomed]


class MessagesState(TypedDict):
    """A state with one key, `messages`, reduced by `add_messages`."""

    messages: Annotated[list[Any], add_messages]


__all__ = ["REMOVE_ALL_MESSAGES", "MessagesState", "add_messages"]
