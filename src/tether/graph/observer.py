"""Which observer a run of a graph gets (`tether.engine.observe`): LangChain's callbacks on the
code of its tasks, or none.

- A run that streams `messages` gets a streaming `ChatObserver`: chat-model tokens become
  `(message_chunk, metadata)` chunks.
- Every other run of a graph whose state has an `add_messages` channel gets the recording one:
  a model stopped mid-answer leaves its text with the run (`RunSnapshot.partial_answers`).
- Other graphs, or any graph when `langchain-core` is not installed, get none: their tasks cost
  nothing more.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable
from typing import Any

from tether.engine.observe import TaskObserver


@functools.cache
def has_langchain() -> bool:
    """Whether `langchain-core` can be imported (without importing it)."""
    return importlib.util.find_spec("langchain_core") is not None


def holds_conversation(schemas: Iterable[Any]) -> bool:
    """Whether a state (its schemas' channels) has a key reduced by `add_messages`."""
    for schema in schemas:
        for factory in getattr(schema, "channels", {}).values():
            reducer = getattr(factory(), "reducer", None)
            if getattr(reducer, "__name__", None) == "add_messages":
                return True
    return False


def observer_for(modes: Iterable[str], records: bool) -> TaskObserver | None:
    """The observer of a run streaming `modes`, for a graph that `records` partial answers
    (it holds a conversation and `langchain-core` is installed)."""
    if "messages" in modes:
        if not records and not has_langchain():
            return None
        from tether.graph.chat_stream import ChatObserver

        return ChatObserver(stream=True)
    return _recorder() if records else None


@functools.cache
def _recorder() -> TaskObserver:
    """The recording observer: one for every run (it keeps nothing between attempts)."""
    from tether.graph.chat_stream import ChatObserver

    return ChatObserver(stream=False)


__all__ = ["has_langchain", "holds_conversation", "observer_for"]
