"""What travels on the bus: a run's numbered events, and the cancel messages beside them."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Final

END_EVENT: Final = "__end__"
"""The name of a run's last event, the run-ended signal: nothing follows it on the run's
stream, and its data is whatever the publisher of the end put there (the run's final record)."""


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One event of a run's stream.

    Attributes:
        seq: its offset: 1 for a run's first event, one more for each next one. A subscriber
            that has seen `seq` resumes with `subscribe(run_id, after=seq)`.
        event: its name (a stream mode such as `values` or `custom|ns`, `lifecycle`, `error`,
            or `END_EVENT`); the bus gives no other name a meaning.
        data: its payload, encoded by the publisher. None only inside the bus: the event was
            too large for a notification and is read from the store before it is delivered.
    """

    seq: int
    event: str
    data: bytes | None

    @property
    def final(self) -> bool:
        """True for the run-ended signal."""
        return self.event == END_EVENT


def cancel_message(run_id: str, data: bytes | None) -> str:
    """A cancel request as one text message (the same on every backend)."""
    encoded = None if data is None else base64.b64encode(data).decode("ascii")
    return json.dumps([run_id, encoded], separators=(",", ":"))


def parse_cancel(message: str | bytes) -> tuple[str, bytes | None] | None:
    """(run id, data) of a cancel message; None for a malformed one (never raises: a message
    on a shared channel is not trusted to be ours)."""
    try:
        run_id, encoded = json.loads(message)
        if not isinstance(run_id, str):
            return None
        return run_id, None if encoded is None else base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError, binascii.Error):
        return None


__all__ = ["END_EVENT", "BusEvent", "cancel_message", "parse_cancel"]
