"""Deadlines: relative timeouts turned into absolute `time.monotonic()` values, and back."""

from __future__ import annotations

import math
import time
from datetime import timedelta

from tether.errors import ConfigError


def coerce_timeout(value: object, what: str) -> float | None:
    """Validate a timeout given as seconds or a `timedelta`; None means no limit.

    Raises:
        ConfigError: naming `what` when the value is not a positive, finite number of seconds.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{what} must be a positive number of seconds, not {value!r}")
    return seconds


def deadline_after(timeout: float | None, now: float | None = None) -> float | None:
    """The absolute deadline `timeout` seconds from `now` (default: the monotonic clock)."""
    if timeout is None:
        return None
    return (time.monotonic() if now is None else now) + timeout


def earliest(*deadlines: float | None) -> float | None:
    """The soonest of several deadlines; None when none is set."""
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None


def remaining(deadline: float | None) -> float | None:
    """Seconds left until `deadline` (never negative), or None for no deadline."""
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.0)
