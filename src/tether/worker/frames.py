"""A queued run's stream as bus events: what a worker publishes and an API server reads back.

An event is named as the server names the SSE event of a chunk (`mode`, or `mode|ns...` for a
subgraph's chunk); its data is the payload in the checkpoint serializer's format (MessagePack
with typed extensions), so a LangChain message, a dataclass or a datetime arrives as itself. The
run-ended signal carries the run's final record (`RunInfo`), so a server that wakes on it need
not read the database.
"""

from __future__ import annotations

import logging
from typing import Any

from tether.bus import BusEvent
from tether.checkpoint.serde import Serializer
from tether.errors import SerializationError
from tether.types import RunInfo

logger = logging.getLogger("tether.worker")


def event_name(chunk: Any) -> tuple[str, Any]:
    """(event name, payload) of a chunk shaped `(mode, payload)` or `(ns, mode, payload)`."""
    if len(chunk) == 3:
        ns, mode, payload = chunk
        return "|".join((mode, *ns)), payload
    mode, payload = chunk
    return str(mode), payload


def encode(payload: Any, serde: Serializer) -> bytes:
    """A chunk's payload as bytes; one the serializer cannot store travels as its text."""
    try:
        return serde.dumps(payload, "stream chunk")
    except SerializationError:
        return serde.dumps(repr(payload))


def decode(event: BusEvent, serde: Serializer) -> Any:
    """The payload of a chunk event (None for an event without data)."""
    return None if not event.data else serde.loads(event.data)


def encode_end(info: RunInfo, serde: Serializer) -> bytes:
    """The run-ended signal's data: the run's final record."""
    return serde.dumps(info, "run")


def decode_end(event: BusEvent, serde: Serializer) -> RunInfo | None:
    """The final record a run-ended signal carries (None when it carries none we can read:
    the database answers then)."""
    try:
        found = serde.loads(event.data) if event.data else None
    except (SerializationError, ValueError, TypeError):
        logger.warning("a run-ended signal for an unknown record format was ignored")
        return None
    return found if isinstance(found, RunInfo) else None


__all__ = ["decode", "decode_end", "encode", "encode_end", "event_name"]
