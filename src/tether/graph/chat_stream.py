"""`stream_mode="messages"` and partial answers: LangChain callbacks on the code of a task.

The engine watches each attempt of a task through its `TaskObserver` hook; `ChatObserver` fills
it. For each attempt it makes a `ModelCalls` handler and makes it the callbacks of the LangChain
runnables the node's code calls (LangChain's context variable for a child's config, as
LangGraph's nodes set it), with the task's LangGraph metadata. The handler

- sends the tokens of every chat model the node calls as `(message_chunk, metadata)` chunks, and
  the messages the node returns that were not streamed (when `messages` is streamed);
- remembers what each model call has streamed and not finished, so that a node stopped
  mid-answer leaves its text behind ("Stop generating" keeps what the user saw).

Two observers: one for runs that stream `messages` (its handler makes `invoke()` of a chat model
stream, as LangGraph's does), and a recording one that graphs with an `add_messages` channel
always have: it sends nothing and changes no model call, and it keeps the text of models that
stream on their own (`model.stream()`, `streaming=True`).

Needs `langchain-core` (imported only by graphs that use it).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextvars import Token
from dataclasses import fields, is_dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any, TypeVar, cast
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager, CallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables.config import var_child_runnable_config

# A handler of this kind makes `invoke()` of a chat model stream its tokens (LangChain's own
# mechanism: its name is private, its use by stream handlers is not).
from langchain_core.tracers._streaming import _StreamingCallbackHandler as _Streaming

from tether.engine.observe import MessageOut
from tether.types import Command

T = TypeVar("T")

NOSTREAM_TAG = "nostream"
"""A model call tagged with it is left out of the `messages` stream, and keeps no partial
answer (LangGraph's tag)."""

_LANGCHAIN_KEYS = frozenset({"tags", "metadata", "configurable", "recursion_limit", "run_name"})


def graph_namespace(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespace of the graph a task runs in: its checkpoint namespace without the task."""
    return tuple(str(metadata.get("langgraph_checkpoint_ns", "")).split("|"))[:-1]


class ModelCalls(BaseCallbackHandler):
    """The chat-model calls of one attempt of a task (the engine's `AttemptWatch`).

    Args:
        out: where `messages` chunks go (None: nowhere, the handler only records).
        seen: ids of the messages the run has sent or given to its nodes (shared by the
            handlers of a run: a message is sent once).
    """

    run_inline = True
    """Callbacks run in the caller's thread, in order."""

    # Only chat models matter: LangChain then skips this handler for every other runnable
    # (chains, tools, retrievers) the node's code runs.
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, out: MessageOut | None, seen: set[str] | None = None) -> None:
        self.out = out
        self.seen = seen if seen is not None else set()
        self.task_source: Mapping[str, Any] = {}
        """The task's metadata, of which `task_metadata` is made on first use."""
        self._task_metadata: dict[str, Any] | None = None
        self.token: Token[Any] | None = None
        # model call -> its metadata; only calls made by the watched task, not `nostream`
        self.calls: dict[UUID, dict[str, Any]] = {}
        # model call -> [texts streamed so far, message id, name]: what a stop leaves behind
        self.streamed: dict[UUID, list[Any]] = {}

    # -- chat models ----------------------------------------------------------------------

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]],
                            *, run_id: UUID, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Remember the metadata of a model call made by the task."""
        if metadata is None or NOSTREAM_TAG in (tags or ()):
            return
        user_tags = [t for t in tags or () if not t.startswith("seq:step")]
        if user_tags:
            metadata["tags"] = user_tags
        self.calls[run_id] = metadata

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *,
                         chunk: Any = None, run_id: UUID, parent_run_id: UUID | None = None,
                         tags: list[str] | None = None, **kwargs: Any) -> None:
        """Send a token's chunk, and add its text to what the call has streamed."""
        metadata = self.calls.get(run_id)
        if metadata is None or not isinstance(chunk, ChatGenerationChunk):
            return
        message = chunk.message
        kept = self.streamed.get(run_id)
        if kept is None:
            if message.id is None:
                message.id = str(uuid.uuid4())
            if self.out is not None:  # sent: the node's output will not send it again
                self.seen.add(message.id)
            kept = self.streamed[run_id] = [[], message.id, metadata.get("lc_agent_name")]
        elif message.id is None:
            message.id = kept[1]
        if self.out is not None:
            self.out((message, metadata))
        text = message.content
        kept[0].append(text if isinstance(text, str) else _text_of(message))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """A call that did not stream sends its whole answer; either way it is complete."""
        metadata = self.calls.pop(run_id, None)
        self.streamed.pop(run_id, None)
        if metadata is None or self.out is None or not response.generations \
                or not response.generations[0]:
            return
        generation = response.generations[0][0]
        if isinstance(generation, ChatGeneration):
            self._send(metadata, generation.message, once=True)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A failed or cancelled call streams nothing more; its text so far is kept."""
        self.calls.pop(run_id, None)

    # -- the attempt (the engine's `AttemptWatch`) ------------------------------------------

    @property
    def task_metadata(self) -> dict[str, Any]:
        """The metadata of the messages the node returns: its task's, as LangGraph's node sees
        it (without `checkpoint_ns`)."""
        if self._task_metadata is None:
            self._task_metadata = {k: v for k, v in self.task_source.items()
                                   if k != "checkpoint_ns"}
        return self._task_metadata

    def started(self, node_input: Any) -> None:
        """Messages a node was given are not news: they are never sent as its output."""
        found = _messages_in(node_input)
        if found:
            seen = cast("set[str | None]", self.seen)
            seen.update(map(_ID, found))  # in C; a message without an id adds None: dropped
            seen.discard(None)

    def finished(self, output: Any) -> None:
        """Send the messages the node returned that were not streamed already."""
        if self.out is None:
            return
        updates = output if isinstance(output, list) else [output]
        for update in updates:
            found = update.update if isinstance(update, Command) else update
            for message in _messages_in(found):
                self._send(self.task_metadata, message, once=True)

    def failed(self, error: BaseException) -> None:
        """Nothing to do: what the node streamed stays (`close` reports it)."""

    def close(self) -> list[dict[str, Any]]:
        """Stop being the callbacks of the node's code; the answers cut short, in order."""
        if self.token is not None:
            var_child_runnable_config.reset(self.token)
            self.token = None
        return partial_answers(self.streamed) if self.streamed else []

    def _send(self, metadata: dict[str, Any], message: BaseMessage, *,
              once: bool = False) -> None:
        if once and message.id in self.seen:
            return
        if message.id is None:
            message.id = str(uuid.uuid4())
        self.seen.add(message.id)
        assert self.out is not None
        self.out((message, metadata))



class StreamingModelCalls(ModelCalls, _Streaming[Any]):
    """`ModelCalls` of a run that streams `messages`: `invoke()` of a chat model streams.

    (LangChain recognises a streaming handler by these two methods, so the recording
    `ModelCalls` must not have them: it would make every model call stream.)
    """

    # Streams pass through untouched (tokens arrive through `on_llm_new_token`).
    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[T]) -> AsyncIterator[T]:
        """Pass a stream through."""
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[T]) -> Iterator[T]:
        """Pass a stream through."""
        return output


def partial_answers(streamed: Mapping[UUID, list[Any]]) -> list[dict[str, Any]]:
    """The answers of unfinished model calls that streamed some text, as pending-write values
    (`{"text", "id", "name"}`); tool-call chunks are not kept (they are incomplete)."""
    answers = [{"text": "".join(texts), "id": ident, "name": name}
               for texts, ident, name in streamed.values()]
    return [answer for answer in answers if answer["text"]]


class ChatObserver:
    """The engine's `TaskObserver` for graphs that call LangChain chat models.

    Args:
        stream: the run streams `messages` (else the observer only records partial answers).
    """

    __slots__ = ("seen", "stream")

    def __init__(self, *, stream: bool) -> None:
        self.stream = stream
        self.seen: set[str] = set()

    def watch(self, config: Callable[[], dict[str, Any]], node_input: Any,
              out: MessageOut | None) -> ModelCalls:
        """Make a handler the callbacks of the attempt's LangChain calls."""
        task_config = config()
        handler: ModelCalls
        if self.stream:
            handler = StreamingModelCalls(out, self.seen)
            if out is not None:
                handler.started(node_input)
                # What a node returns is shown with its task's metadata as LangGraph's node
                # sees it (made only when the node returns a message).
                handler.task_source = task_config.get("metadata") or {}
        else:
            handler = ModelCalls(None)
        keys = _LANGCHAIN_KEYS & task_config.keys()  # the keys LangChain's config has (in C)
        child: dict[str, Any] = dict(zip(keys, map(task_config.__getitem__, keys), strict=True))
        given = task_config.get("callbacks")
        child["callbacks"] = callbacks = _with_handler(given, handler)
        if given is not None:
            # The run was given callbacks: a node that passes its config on to a model passes
            # them, and the handler with them (as LangGraph's node config holds its own).
            task_config["callbacks"] = callbacks
        handler.token = var_child_runnable_config.set(child)  # type: ignore[arg-type]
        return handler


def _with_handler(callbacks: Any, handler: ModelCalls) -> BaseCallbackManager:
    """The caller's callbacks (a list or a manager), and `handler`, in a manager (as lists,
    LangChain would concatenate them each time a runnable merges its config with its caller's:
    a bound model would call the handler twice)."""
    if callbacks is None:
        return CallbackManager(handlers=[handler], inheritable_handlers=[handler])
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
    else:
        manager = CallbackManager(handlers=[])
        for given in callbacks or ():
            manager.add_handler(given, inherit=True)
    manager.add_handler(handler, inherit=True)
    return manager


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content
                   if isinstance(block, dict) and block.get("type") == "text")


def _messages_in(value: Any) -> list[BaseMessage]:
    """Messages in a value, one level deep: a message, a list of them, or a state's fields."""
    if type(value) is dict:
        items: Collection[Any] = value.values()
    elif isinstance(value, BaseMessage):
        return [value]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        return _messages_of(value)
    else:
        items = _field_values(value)
    if _SCALARS.issuperset(map(type, items)):  # a state of plain values (in C)
        return []
    found: list[BaseMessage] = []
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is list or kind is tuple or (
                isinstance(item, Sequence) and not isinstance(item, (str, bytes))):
            found.extend(_messages_of(item))
        elif isinstance(item, BaseMessage):
            found.append(item)
    return found


def _messages_of(items: Sequence[Any]) -> list[BaseMessage]:
    """The messages of a sequence, in order (a history of messages only: checked in C)."""
    if all(map(isinstance, items, repeat(BaseMessage))):
        return list(items)
    return [v for v in items if isinstance(v, BaseMessage)]


_SCALARS = frozenset({int, float, str, bool, bytes, type(None)})
"""Field types that never hold a message (skipped without a slower check)."""
_ID = attrgetter("id")


def _field_values(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    if is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in fields(value)]
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, dict):
        return [getattr(value, name) for name in model_fields]
    return []


__all__ = ["NOSTREAM_TAG", "ChatObserver", "ModelCalls", "StreamingModelCalls",
           "graph_namespace", "partial_answers"]
