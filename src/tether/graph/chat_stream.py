"""`stream_mode="messages"`: a LangChain callback handler, given to the nodes of a run through
their config, that turns chat-model tokens into `(message_chunk, metadata)` stream chunks — and
remembers what each model call has streamed, so that a node stopped mid-answer leaves its text
behind ("Stop generating" keeps what the user saw).

Needs `langchain-core` (imported only by runs that stream `messages`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult

# A handler of this kind makes `invoke()` of a chat model stream its tokens (LangChain's own
# mechanism: its name is private, its use by stream handlers is not).
from langchain_core.tracers._streaming import _StreamingCallbackHandler as _Streaming

from tether.graph.repair import PartialAnswer
from tether.types import Command

T = TypeVar("T")

NOSTREAM_TAG = "nostream"
"""A model call tagged with it is left out of the `messages` stream (LangGraph's tag)."""

Meta = tuple[tuple[str, ...], dict[str, Any]]
Emit = Callable[[tuple[str, ...], tuple[Any, dict[str, Any]]], None]
"""Receives (namespace, (message, metadata)) for each `messages` chunk."""


def graph_namespace(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespace of the graph a task runs in: its checkpoint namespace without the task."""
    return tuple(str(metadata.get("langgraph_checkpoint_ns", "")).split("|"))[:-1]


class MessageStream(BaseCallbackHandler, _Streaming[Any]):
    """Streams the messages of one run.

    Args:
        emit: where chunks go.
        subgraphs: also stream model calls made inside subgraphs.
    """

    run_inline = True
    """Callbacks run in the caller's thread, in order."""

    def __init__(self, emit: Emit, *, subgraphs: bool) -> None:
        self.emit = emit
        self.subgraphs = subgraphs
        self.calls: dict[UUID, Meta] = {}
        self.seen: set[str] = set()
        # model call -> (task namespace, text so far, message id): what a stop leaves behind
        self.streamed: dict[UUID, tuple[str, str, str | None]] = {}

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[T]) -> AsyncIterator[T]:
        """Streams pass through untouched (tokens arrive through `on_llm_new_token`)."""
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[T]) -> Iterator[T]:
        """Streams pass through untouched."""
        return output

    # -- chat models ----------------------------------------------------------------------

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]],
                            *, run_id: UUID, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Remember the metadata of a model call made by a node of this run."""
        if not metadata or NOSTREAM_TAG in (tags or ()):
            return
        ns = graph_namespace(metadata)
        if ns and not self.subgraphs:
            return
        user_tags = [t for t in tags or () if not t.startswith("seq:step")]
        if user_tags:
            metadata["tags"] = user_tags
        self.calls[run_id] = (ns, metadata)

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *,
                         chunk: Any = None, run_id: UUID, parent_run_id: UUID | None = None,
                         tags: list[str] | None = None, **kwargs: Any) -> None:
        """Stream a token's chunk, and add its text to what the call has streamed."""
        meta = self.calls.get(run_id)
        if meta is None or not isinstance(chunk, ChatGenerationChunk):
            return
        message = chunk.message
        self._send(meta, message)
        task = str(meta[1].get("langgraph_checkpoint_ns", ""))
        _, text, message_id = self.streamed.get(run_id, (task, "", None))
        self.streamed[run_id] = (task, text + _text_of(message), message_id or message.id)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """A call that did not stream sends its whole answer; either way it is complete."""
        meta = self.calls.pop(run_id, None)
        self.streamed.pop(run_id, None)
        if meta is None or not response.generations or not response.generations[0]:
            return
        generation = response.generations[0][0]
        if isinstance(generation, ChatGeneration):
            self._send(meta, generation.message, once=True)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A failed or cancelled call streams nothing more; its text so far is kept."""
        self.calls.pop(run_id, None)

    # -- node outputs (called by the engine, as LangGraph's chain callbacks do) -------------

    def node_started(self, metadata: dict[str, Any], node_input: Any) -> None:
        """Messages a node was given are not news: they are never sent as its output."""
        for message in _messages_in(node_input):
            if message.id is not None:
                self.seen.add(message.id)

    def node_finished(self, metadata: dict[str, Any], output: Any) -> None:
        """Send the messages a node returned that were not streamed already."""
        ns = graph_namespace(metadata)
        if ns and not self.subgraphs:
            return
        meta: Meta = (ns, metadata)
        updates = output if isinstance(output, list) else [output]
        for update in updates:
            found = update.update if isinstance(update, Command) else update
            for message in _messages_in(found):
                self._send(meta, message, once=True)

    # -- what a stop leaves ---------------------------------------------------------------

    def take_partial(self, task_ns: str) -> PartialAnswer | None:
        """The text a model call of task `task_ns` had streamed and not finished (then
        forgotten); None when there is none."""
        for run_id, (task, text, message_id) in list(self.streamed.items()):
            if task == task_ns:
                del self.streamed[run_id]
                return PartialAnswer(text, message_id) if text else None
        return None

    def _send(self, meta: Meta, message: BaseMessage, *, once: bool = False) -> None:
        if once and message.id in self.seen:
            return
        if message.id is None:
            message.id = str(uuid.uuid4())
        self.seen.add(message.id)
        self.emit(meta[0], (message, meta[1]))


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content
                   if isinstance(block, dict) and block.get("type") == "text")


def _messages_in(value: Any) -> list[BaseMessage]:
    """Messages in a value, one level deep: a message, a list of them, or a state's fields."""
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [v for v in value if isinstance(v, BaseMessage)]
    found: list[BaseMessage] = []
    for item in _field_values(value):
        if isinstance(item, BaseMessage):
            found.append(item)
        elif isinstance(item, Sequence) and not isinstance(item, str):
            found.extend(v for v in item if isinstance(v, BaseMessage))
    return found


def _field_values(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    if is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in fields(value)]
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, dict):
        return [getattr(value, name) for name in model_fields]
    return []


__all__ = ["NOSTREAM_TAG", "MessageStream", "graph_namespace"]
