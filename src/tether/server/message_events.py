"""Chat-model tokens on the wire, as the Agent Server streams them.

A run streams one mode for them, tether's `messages`: `(message_chunk, metadata)` chunks. A
client asks for them in one of two forms:

- `messages-tuple`: each chunk as a `messages` event whose data is `[message, metadata]` (what
  `langgraph-sdk`'s `useStream` and most clients read);
- `messages`: the Agent Server's older form, per message: a `messages/metadata` event the first
  time a message id is seen, then `messages/partial` events carrying the message accumulated
  so far (or `messages/complete` for a message that was not streamed in chunks).

The feed keeps the chunks once, as `messages` events; the older form is made for each
subscriber that asks for it (`LegacyMessages`), with the id of the chunk it comes from, so that
a client reconnecting with `Last-Event-ID` continues where it left.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.server.feed import FeedEvent
from tether.server.wire import dumps

RUN_MODE = "messages"
"""The mode a run streams chat-model tokens in (and the name of their feed events)."""

CLIENT_MODES = frozenset({"messages", "messages-tuple"})
"""The names clients ask for them by."""


def run_modes(modes: Iterable[str]) -> tuple[str, ...]:
    """The stream modes a run is started with for a client's `modes`."""
    out: list[str] = []
    for mode in modes:
        named = RUN_MODE if mode in CLIENT_MODES else mode
        if named not in out:
            out.append(named)
    return tuple(out)


def wants_legacy(modes: Iterable[str] | None) -> bool:
    """Whether a client asked for the older `messages` form."""
    return modes is not None and "messages" in modes


class LegacyMessages:
    """Turns one subscriber's `messages` feed events into the older form (see the module)."""

    __slots__ = ("_messages",)

    def __init__(self) -> None:
        self._messages: dict[str, Any] = {}

    def wire(self, event: FeedEvent, *, keep_tuple: bool) -> bytes:
        """The SSE bytes of `event`: itself, unless it is a `messages` event (then its older
        form, and itself too with `keep_tuple`)."""
        if event.mode != RUN_MODE:
            return event.wire()
        payload = event.payload
        if not isinstance(payload, (list, tuple)) or len(payload) != 2:
            return event.wire()
        message, metadata = payload
        ns = event.event[len(RUN_MODE):]  # "" or "|ns..."
        parts: list[bytes] = [event.wire()] if keep_tuple else []
        ident = getattr(message, "id", None)
        key = str(ident)
        known = self._messages.get(key)
        if known is None:
            parts.append(_frame(f"messages/metadata{ns}", {key: {"metadata": metadata}},
                                event.seq))
            self._messages[key] = message
        elif _is_chunk(message) and _is_chunk(known):
            self._messages[key] = known + message
        else:
            self._messages[key] = message
        kind = "partial" if _is_chunk(message) else "complete"
        parts.append(_frame(f"messages/{kind}{ns}", [self._messages[key]], event.seq))
        return b"".join(parts)


def _is_chunk(message: Any) -> bool:
    return type(message).__name__.endswith("Chunk")


def _frame(event: str, data: Any, seq: int) -> bytes:
    return b"event: %s\r\ndata: %s\r\nid: %d\r\n\r\n" % (event.encode(), dumps(data), seq)


__all__ = ["CLIENT_MODES", "RUN_MODE", "LegacyMessages", "run_modes", "wants_legacy"]
