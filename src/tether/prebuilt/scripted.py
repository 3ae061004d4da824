"""`ScriptedChatModel`: a LangChain chat model that plays back a script, so that agents run
offline and deterministically in tests, docs and demos. It binds tools, streams token by token
(tool calls as partial-JSON chunks, as real providers do) and, like every major chat API,
rejects a conversation in which a tool call has no result."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

from tether.cancel import sleep, sleep_sync


class DanglingToolCallError(ValueError):
    """The model was given an assistant tool call with no tool result after it (what OpenAI
    and Anthropic answer with a 400)."""


class ScriptedChatModel(BaseChatModel):
    """A chat model whose answers are written in advance.

    Each call takes the next entry of `responses` (an `AIMessage`, or a string for a plain
    answer) and records the messages it was given in `calls`.

    Attributes:
        responses: the answers, in order; a call past the end raises `IndexError` (or, with
            `cycle`, starts the script over).
        delay: seconds to wait before each streamed chunk (a cancellable sleep, so a stop
            lands at once).
        stalls: response index -> number of chunks streamed before the model waits until it
            is cancelled (a provider that hangs mid-answer).
        strict: reject input with a tool call that has no `ToolMessage` answering it.
        cycle: after the last response, start again from the first (a script played many
            times, as in benchmarks and demos).
    """

    responses: list[BaseMessage | str]
    delay: float = 0.0
    stalls: dict[int, int] = Field(default_factory=dict)
    strict: bool = True
    cycle: bool = False
    _next: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages given to each call so far, in call order."""
        return self._calls

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools as a provider would (OpenAI's tool format); the script decides the calls."""
        del tool_choice
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, **kwargs)

    # -- one answer -----------------------------------------------------------------------

    def _take(self, messages: list[BaseMessage]) -> tuple[int, AIMessage]:
        if self.strict:
            check_tool_results(messages)
        with self._lock:
            index = self._next
            if self.cycle:
                index %= len(self.responses)
            elif index >= len(self.responses):
                raise IndexError(f"the script has {len(self.responses)} responses; "
                                 f"call {index + 1} has none")
            self._next += 1
            self._calls.append(list(messages))
        entry = self.responses[index]
        answer = AIMessage(content=entry) if isinstance(entry, str) else entry
        if not isinstance(answer, AIMessage):
            raise TypeError(f"response {index} must be an AIMessage or a str, "
                            f"not {type(answer).__name__}")
        finish = "tool_calls" if answer.tool_calls else "stop"
        answer = answer.model_copy(update={
            "response_metadata": {**answer.response_metadata, "finish_reason": finish,
                                  "model_name": "scripted"},
        })
        return index, answer

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        index, answer = self._take(messages)
        if index in self.stalls:
            _stall_sync()
        return ChatResult(generations=[ChatGeneration(message=answer)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        index, answer = self._take(messages)
        if index in self.stalls:
            await _stall()
        return ChatResult(generations=[ChatGeneration(message=answer)])

    # -- streaming ------------------------------------------------------------------------

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        index, answer = self._take(messages)
        for count, chunk in enumerate(chunks_of(answer)):
            if count == self.stalls.get(index):
                _stall_sync()
            if self.delay:
                sleep_sync(self.delay)
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None:
                run_manager.on_llm_new_token(_text(chunk), chunk=generation)
            yield generation

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        index, answer = self._take(messages)
        for count, chunk in enumerate(chunks_of(answer)):
            if count == self.stalls.get(index):
                await _stall()
            if self.delay:
                await sleep(self.delay)
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None:
                await run_manager.on_llm_new_token(_text(chunk), chunk=generation)
            yield generation


def chunks_of(answer: AIMessage) -> list[AIMessageChunk]:
    """`answer` as a provider streams it: its words (whitespace kept), then each tool call as
    a name chunk and its arguments' JSON in pieces; the last chunk carries the metadata."""
    text = answer.content if isinstance(answer.content, str) else ""
    pieces: list[AIMessageChunk] = [
        AIMessageChunk(content=word, id=answer.id) for word in re.split(r"(\s+)", text) if word
    ]
    for position, call in enumerate(answer.tool_calls):
        pieces.append(AIMessageChunk(content="", id=answer.id, tool_call_chunks=[
            {"name": call["name"], "args": "", "id": call["id"], "index": position}]))
        encoded = json.dumps(call["args"])
        for part in re.split(r"(?<=,)", encoded):
            pieces.append(AIMessageChunk(content="", id=answer.id, tool_call_chunks=[
                {"name": None, "args": part, "id": None, "index": position}]))
    if not pieces:
        pieces.append(AIMessageChunk(content="", id=answer.id))
    last = pieces[-1]
    pieces[-1] = last.model_copy(update={
        "response_metadata": dict(answer.response_metadata), "chunk_position": "last"})
    return pieces


def check_tool_results(messages: Sequence[BaseMessage]) -> None:
    """Refuse a conversation in which a tool call is not answered by exactly one result.

    Raises:
        DanglingToolCallError: naming the first call without (or with more than one) result.
    """
    answered: dict[str, int] = {}
    for message in messages:
        if isinstance(message, ToolMessage):
            answered[message.tool_call_id] = answered.get(message.tool_call_id, 0) + 1
    for message in messages:
        for call in getattr(message, "tool_calls", None) or ():
            count = answered.get(call["id"] or "", 0)
            if count != 1:
                raise DanglingToolCallError(
                    f"tool call {call['id']!r} ({call['name']}) has {count} results; "
                    "every tool call must be answered by exactly one tool message")


def _text(chunk: AIMessageChunk) -> str:
    return chunk.content if isinstance(chunk.content, str) else ""


async def _stall() -> None:
    await asyncio.Event().wait()


def _stall_sync() -> None:
    while True:
        sleep_sync(3600.0)


__all__ = ["DanglingToolCallError", "ScriptedChatModel", "check_tool_results", "chunks_of"]
