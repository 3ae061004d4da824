"""Identifiers: time-ordered checkpoint and run ids (UUIDv7), and deterministic task ids."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0, 0]  # last millisecond used, counter within it


def uuid7() -> str:
    """A UUIDv7 string: sorts by creation time, and strictly increases within this process."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms = _last[0]
            _last[1] += 1
            if _last[1] > 0xFFF:
                ms += 1
                _last[1] = 0
        else:
            _last[1] = 0
        _last[0] = ms
        counter = _last[1]
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFFFFFFFFFFFFFF
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))


_TASK_NS = uuid.UUID("6f1c0c8e-2b1e-4a5b-9a43-6b1d3f2c9e10")


def task_id(checkpoint_id: str, ns: str, step: int, name: str, path: str) -> str:
    """The id of a task: the same inputs give the same id, so a resume finds its writes."""
    return str(uuid.uuid5(_TASK_NS, f"{checkpoint_id}|{ns}|{step}|{name}|{path}"))
