"""Time in a store: one reading of the clock per batch, in whole microseconds since the epoch,
so that every backend keeps exactly the same timestamps; and when an item with a ttl expires.

The clock is the store's (`time.time` by default), not the database's: all backends agree, and
tests can pass a fake one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the epoch (`time.time`)."""

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROS = 1_000_000


def now_micros(clock: Clock = time.time) -> int:
    """The clock's time, in microseconds since the epoch."""
    return round(clock() * MICROS)


def as_datetime(micros: int) -> dt.datetime:
    """A timestamp in microseconds as an aware UTC datetime."""
    return EPOCH + dt.timedelta(microseconds=micros)


def as_micros(moment: dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def expiry(now: int, ttl_minutes: float | None) -> int | None:
    """When an item written (or refreshed) at `now` with `ttl_minutes` expires, or None."""
    if ttl_minutes is None:
        return None
    return now + round(ttl_minutes * 60 * MICROS)


def live(expires_at: int | None, now: int) -> bool:
    """Whether an item expiring at `expires_at` is still there at `now`."""
    return expires_at is None or expires_at > now


__all__ = ["Clock", "as_datetime", "as_micros", "expiry", "live", "now_micros"]
