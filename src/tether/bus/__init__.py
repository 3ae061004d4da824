"""The stream bus: a run's events, its end and cancel requests, across processes.

`StreamBus` over a transport: Redis Streams (`tether.bus.redis`, the `redis` extra), Postgres
`LISTEN/NOTIFY` with a table (`tether.bus.postgres`, the `postgres` extra), or in-process memory
(`tether.bus.memory`). `open_bus(url)` picks one from a URL. Backends load on first use, so
`import tether.bus` needs no extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tether.bus.bus import StreamBus, bus_for, open_bus
from tether.bus.event import END_EVENT, BusEvent
from tether.bus.publisher import Publisher
from tether.bus.subscription import Subscription
from tether.bus.transport import Sink, Transport

if TYPE_CHECKING:
    from tether.bus.memory import MemoryBroker, MemoryTransport
    from tether.bus.postgres import PostgresTransport
    from tether.bus.redis import RedisTransport

_HOMES = {"MemoryBroker": "tether.bus.memory", "MemoryTransport": "tether.bus.memory",
          "PostgresTransport": "tether.bus.postgres", "RedisTransport": "tether.bus.redis"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tether.bus' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = ["END_EVENT", "BusEvent", "MemoryBroker", "MemoryTransport", "PostgresTransport",
           "Publisher", "RedisTransport", "Sink", "StreamBus", "Subscription", "Transport",
           "bus_for", "open_bus"]
