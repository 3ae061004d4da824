"""Cancellation: scopes, deadlines, shields and reasons. The only code that touches asyncio's
cancellation machinery lives here."""

from tether.cancel.context import (
    cancel_reason,
    cancelled,
    check_cancelled,
    current_scope,
    deadline,
    on_cancel,
    shield,
    sleep,
    sleep_sync,
)
from tether.cancel.deadlines import coerce_timeout, deadline_after, earliest, remaining
from tether.cancel.scope import CancelScope

__all__ = [
    "CancelScope",
    "cancel_reason",
    "cancelled",
    "check_cancelled",
    "coerce_timeout",
    "current_scope",
    "deadline",
    "deadline_after",
    "earliest",
    "on_cancel",
    "remaining",
    "shield",
    "sleep",
    "sleep_sync",
]
