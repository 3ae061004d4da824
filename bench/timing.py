"""Timing of repeated calls: warm-up, median of repeats, and the peak RSS each repeat adds."""

from __future__ import annotations

import gc
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Plan:
    """How to measure: the command line's choices, shared by every workload."""

    repeat: int
    warmup: int
    quick: bool
    tmpdir: Path


@dataclass
class Measurement:
    """What one workload measured on one library."""

    seconds: list[float]
    """Wall time of each timed repeat (warm-ups excluded)."""
    per: int
    """Units (supersteps) in one repeat; the table reports `median / per`."""
    result: Any
    """The output of the last repeat, compared across libraries."""
    peak_rss_kib: int | None = None
    """Largest rise of the process's peak RSS during one repeat, when Linux lets us reset it."""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_unit(self) -> float:
        return self.median / max(self.per, 1)


@dataclass
class Stopwatch:
    """Times a loop of repeats; the loop body itself is the caller's (sync or async).

    ```
    watch = Stopwatch(plan)
    for i in watch.indices():
        with watch.lap():
            result = run(i)
    ```
    """

    plan: Plan
    seconds: list[float] = field(default_factory=list)
    peak_rss_kib: int | None = None
    _index: int = 0

    def indices(self) -> Iterator[int]:
        """Distinct indices (for fresh thread ids): the warm-ups first, then the timed repeats."""
        for index in range(self.plan.warmup + self.plan.repeat):
            self._index = index
            yield index

    @contextmanager
    def lap(self) -> Iterator[None]:
        """Time the body unless it is a warm-up; collect garbage first so repeats start alike."""
        gc.collect()
        rss_before = _reset_peak_rss()
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        if self._index < self.plan.warmup:
            return
        self.seconds.append(elapsed)
        peak = _peak_rss_kib()
        if rss_before is not None and peak is not None:
            self.peak_rss_kib = max(self.peak_rss_kib or 0, peak - rss_before)

    def measurement(self, per: int, result: Any) -> Measurement:
        return Measurement(list(self.seconds), per, result, self.peak_rss_kib)


def _reset_peak_rss() -> int | None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS and return it, in KiB."""
    try:
        _CLEAR_REFS.write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return None


def _peak_rss_kib() -> int | None:
    try:
        return _status_kib("VmHWM")
    except OSError:
        return None


def _status_kib(key: str) -> int | None:
    found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    return int(found[1]) if found else None
