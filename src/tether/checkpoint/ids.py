"""Identifiers: time-ordered checkpoint and run ids (UUIDv7), and deterministic task ids."""

from __future__ import annotations

import hashlib
import random
import threading
import time

_lock = threading.Lock()
_random = random.Random()
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
    rand = _random.getrandbits(62)  # uniqueness, not secrecy: time and counter come first
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return _dashed(f"{value:032x}")


def _dashed(hexa: str) -> str:
    # The canonical 8-4-4-4-12 form, without building a uuid.UUID (this is on every step).
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def task_id(checkpoint_id: str, ns: str, step: int, name: str, path: str) -> str:
    """The id of a task: the same inputs give the same id, so a resume finds its writes."""
    key = f"{checkpoint_id}|{ns}|{step}|{name}|{path}".encode()
    return _dashed(hashlib.blake2b(key, digest_size=16).hexdigest())
