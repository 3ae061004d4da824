"""Deadlines: relative timeouts turned into absolute `time.monotonic()` values, and back."""

from __future__ import annotations

import math
import time
from datetime import timedelta

from tether.errors import ConfigError

MAX_TIMEOUT = 1e9
"""The longest timeout, in seconds (about 31 years): longer ones are no limit at all, and no
clock or database can hold the deadline they would give."""


def coerce_timeout(value: object, what: str) -> float | None:
    """Validate a timeout given as seconds or a `timedelta`; None means no limit.

    Raises:
        ConfigError: naming `what` when the value is not a positive, finite number of seconds
            of at most `MAX_TIMEOUT`.
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
    if seconds > MAX_TIMEOUT:
        raise ConfigError(f"{what} must be at most {MAX_TIMEOUT:.0f} seconds (None for no "
                          f"limit), not {value!r}")
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
