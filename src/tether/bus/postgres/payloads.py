"""Events as `NOTIFY` payloads: packed into as few notifications as fit, each under Postgres's
8,000-byte limit. An event too large for one travels as a reference (its offset and name, no
data) and is read from the table by the subscriber."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Final

from tether.bus.event import BusEvent

PAYLOAD_LIMIT: Final = 7_900
"""Bytes per notification payload (Postgres refuses 8,000 and more)."""


def pack(events: Sequence[BusEvent], limit: int = PAYLOAD_LIMIT) -> list[str]:
    """The notification payloads of `events`, in order: each a JSON list of
    `[seq, event, base64 data or null]`."""
    payloads: list[str] = []
    current: list[str] = []
    size = 2  # the brackets
    for event in events:
        entry = _entry(event, with_data=True)
        if len(entry) + 2 > limit:
            entry = _entry(event, with_data=False)
        if len(entry) + 2 > limit:  # even its name is too long: the offset says enough
            entry = _entry(BusEvent(event.seq, "", None), with_data=False)
        if current and size + len(entry) + 1 > limit:
            payloads.append("[" + ",".join(current) + "]")
            current, size = [], 2
        current.append(entry)
        size += len(entry) + 1
    if current:
        payloads.append("[" + ",".join(current) + "]")
    return payloads


def unpack(payload: str) -> list[BusEvent]:
    """The events of one payload; [] for one that is not ours (never raises)."""
    try:
        entries = json.loads(payload)
        return [BusEvent(int(seq), str(name), None if data is None else base64.b64decode(data))
                for seq, name, data in entries]
    except (ValueError, TypeError):
        return []


def _entry(event: BusEvent, *, with_data: bool) -> str:
    data = (base64.b64encode(event.data).decode("ascii")
            if with_data and event.data is not None else None)
    return json.dumps([event.seq, event.event, data], separators=(",", ":"))


__all__ = ["PAYLOAD_LIMIT", "pack", "unpack"]
