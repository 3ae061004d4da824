"""Closing a conversation that a stopped run left open, so that the model is never handed a
tool call without its result: each unanswered call of the last assistant turn is answered with
`ToolMessage(status="error", content="Cancelled: <why>")`, and the text the model had streamed
when it was stopped is kept as an `AIMessage` whose `finish_reason` is `"cancelled"`.

Messages are LangChain's when the conversation's are (tether's light classes otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.checkpoint.base import CheckpointStore, StoredCheckpoint, WriteRecord
from tether.constants import PARTIAL, RETURN
from tether.engine.closing import Closing
from tether.types import Command, RunInfo, RunStatus

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
        closing.append(answer_of(messages, partial))
    return closing


def answer_of(messages: Sequence[Any], partial: PartialAnswer) -> Any:
    """`partial` as the assistant message that keeps it (of the conversation's classes): its
    text, no tool calls, `finish_reason` "cancelled"."""
    return _classes(messages).ai(
        content=partial.text, id=partial.id, name=partial.name,
        response_metadata={"finish_reason": CANCELLED_FINISH_REASON})


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


STOPPED = frozenset({RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.ERROR})
"""The ends of a run after which its thread is repaired (a cancel of any kind, a timeout, an
error); a run that paused (`interrupted`) is answered, not repaired."""


class ThreadCloser:
    """Repairs the conversation of a thread whose last run stopped, before a new input.

    Given to every run of a graph whose state has an `add_messages` channel (the engine's
    `Closer`): the results the stopped run kept are applied, every other open tool call is
    answered as cancelled, and a kept partial answer is appended.

    Args:
        ledger: where the graph's runs are recorded (to read why the last one stopped).
        key: the state key of the conversation.
    """

    __slots__ = ("key", "ledger")

    def __init__(self, ledger: CheckpointStore, key: str) -> None:
        self.ledger = ledger
        self.key = key

    async def __call__(self, loaded: StoredCheckpoint,
                       values: Mapping[str, Any]) -> Closing | None:
        """The messages that close the conversation at `loaded`, or None.

        Cancellation:
            Only reads the stopped run's record: safe to cancel and to repeat.
        """
        run_id = loaded.run_id or loaded.metadata.get("run_id")
        if not isinstance(run_id, str):
            return None
        partials = [p for p in map(_partial, loaded.pending_writes) if p is not None]
        messages = list(values.get(self.key) or ())
        open_ids = [call["id"] for call in open_calls(messages)]
        if not open_ids and not partials:
            return None
        info = await self.ledger.aget_run(run_id)
        if info is None or info.status not in STOPPED:
            return None
        kept = kept_answers(loaded.pending_writes, open_ids, self.key)
        why = stop_message(info)
        by_call = {m.tool_call_id: m for m in
                   (*kept, *closing_messages([*messages, *kept], why, None))}
        added: list[Any] = [by_call[i] for i in open_ids]  # in call order, as a ToolNode's
        added.extend(answer_of(messages, partial) for partial in partials)
        if not added:
            return None
        kept_ids = {m.tool_call_id for m in kept}
        return Closing({self.key: [added]}, {
            "run_id": run_id, "status": info.status.value, "reason": why,
            "kept": [i for i in open_ids if i in kept_ids],
            "cancelled": [i for i in open_ids if i not in kept_ids],
            "partial": sum(len(p.text) for p in partials),
        })


def stop_message(info: RunInfo) -> str:
    """Why a run stopped, in words (its cancel reason's message, or its error)."""
    if info.reason is not None and info.reason.message:
        return info.reason.message
    if info.error:
        return info.error
    return f"the run ended {info.status.value}"


def kept_answers(writes: Sequence[WriteRecord], open_ids: Sequence[str],
                 key: str) -> list[Any]:
    """The tool answers a stopped run kept (as a finished task's writes to `key`, or as the
    results of finished tool calls) for the calls in `open_ids`, in call order, once each."""
    wanted = set(open_ids)
    found: dict[str, Any] = {}
    for write in writes:
        if write.channel not in (key, RETURN):
            continue
        for message in _tool_messages(write.value):
            call_id = getattr(message, "tool_call_id", None)
            if call_id in wanted and call_id not in found:
                found[call_id] = message
    return [found[i] for i in open_ids if i in found]


def _tool_messages(value: Any) -> Iterator[Any]:
    if getattr(value, "type", None) == "tool":
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tool_messages(item)
    elif isinstance(value, Command):
        yield from _tool_messages(value.update)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tool_messages(item)


def _partial(write: WriteRecord) -> PartialAnswer | None:
    value = write.value
    if write.channel != PARTIAL or not isinstance(value, Mapping):
        return None
    text = value.get("text")
    if not isinstance(text, str) or not text:
        return None
    ident, name = value.get("id"), value.get("name")
    return PartialAnswer(text, ident if isinstance(ident, str) else None,
                         name if isinstance(name, str) else None)


def messages_key(schemas: Any) -> str | None:
    """The state key holding a conversation (a channel reduced by `add_messages`): `messages`
    when it is one, else the first; None when the state has none."""
    keys: list[str] = []
    for schema in schemas:
        for key, factory in schema.channels.items():
            reducer = getattr(factory(), "reducer", None)
            if getattr(reducer, "__name__", None) == "add_messages" and key not in keys:
                keys.append(key)
    if "messages" in keys:
        return "messages"
    return keys[0] if keys else None


__all__ = ["CANCELLED_FINISH_REASON", "STOPPED", "PartialAnswer", "ThreadCloser", "answer_of",
           "closing_messages", "kept_answers", "messages_key", "open_calls", "stop_message"]
