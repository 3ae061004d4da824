"""Interleaved timing of one workload on several libraries: warm-up, repeats, median.

The libraries take turns repeat by repeat (the first to go alternates), so a slow spell of the
machine lands on both sides instead of skewing one library's numbers.
"""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import statistics
import threading
import time
import traceback
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.libs import Synchronous

T = TypeVar("T")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class WorkloadTimeout(TimeoutError):
    """One run of a workload took longer than `--timeout`."""


@dataclass(frozen=True)
class Plan:
    """How to measure: the command line's choices, shared by every workload."""

    repeat: int
    warmup: int
    quick: bool
    tmpdir: Path
    timeout: float = 0.0
    """Seconds one run (one `invoke`) may take on one library; 0: no limit."""
    sqlite_synchronous: Synchronous | None = None
    """SQLite's `PRAGMA synchronous` for both libraries; `None`: each library's default."""


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
class Outcome:
    """One library's part of a row: a measurement, or the error that prevented it."""

    measurement: Measurement | None = None
    error: str | None = None
    trace: str | None = None
    timed_out: bool = False
    """The library may still have a thread running the abandoned run."""


@dataclass
class _Track:
    seconds: list[float] = field(default_factory=list)
    peak_rss_kib: int | None = None
    result: Any = None
    error: str | None = None
    trace: str | None = None
    timed_out: bool = False


class Contest:
    """Times the same workload on several libraries, turn by turn; the loop body is the caller's.

    ```
    contest = Contest(plan, ["langgraph", "tether"])
    with contest.guard("tether"):
        ...build tether's graph...         # an exception here drops tether, not the others
    for index, name in contest.turns():
        with contest.lap(name):
            contest.results[name] = run[name](index)
    outcomes = contest.outcomes(per=steps)
    ```
    An exception in a `lap` or `guard` (a timeout included) is recorded as that library's error,
    and the library takes no more turns.
    """

    def __init__(self, plan: Plan, names: Sequence[str]) -> None:
        self.plan = plan
        self.names = list(names)
        self.results: dict[str, Any] = {}
        self._tracks = {name: _Track() for name in names}
        self._timed = False

    def turns(self) -> Iterator[tuple[int, str]]:
        """`(index, library)` pairs: warm-ups first, then timed repeats; an index per repeat."""
        for index in range(self.plan.warmup + self.plan.repeat):
            self._timed = index >= self.plan.warmup
            order = self.names if index % 2 == 0 else self.names[::-1]
            for name in order:
                if self._tracks[name].error is None:
                    yield index, name

    @contextmanager
    def guard(self, name: str) -> Iterator[None]:
        """Record an exception in the body as `name`'s error instead of raising it.

        `CancelledError` counts too: tether's cancel exceptions subclass it, and the harness
        never cancels the task that runs a lap.
        """
        try:
            yield
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the library's error
            track = self._tracks[name]
            track.error, track.trace = one_line(exc), traceback.format_exc()
            track.timed_out = isinstance(exc, WorkloadTimeout)

    @contextmanager
    def lap(self, name: str, *, grace: float = 0.0) -> Iterator[None]:
        """Time the body (unless it is a warm-up), as `guard` does.

        The body is interrupted by a signal after `plan.timeout + grace` seconds; async bodies
        enforce `plan.timeout` themselves (`within`) and give a grace so that the signal is only
        a backstop for an event loop that is blocked.
        """
        track = self._tracks[name]
        with self.guard(name):
            gc.collect()
            rss_before = _reset_peak_rss()
            started = time.perf_counter()
            with time_limit(self.plan.timeout + grace if self.plan.timeout > 0 else 0):
                yield
            elapsed = time.perf_counter() - started
            if self._timed:
                track.seconds.append(elapsed)
                track.peak_rss_kib = _max(track.peak_rss_kib, _rss_rise(rss_before))

    def outcomes(self, per: dict[str, int] | int) -> dict[str, Outcome]:
        """Each library's measurement (`per` units in one repeat), or its error."""
        found: dict[str, Outcome] = {}
        for name, track in self._tracks.items():
            if track.error is not None:
                found[name] = Outcome(
                    error=track.error, trace=track.trace, timed_out=track.timed_out
                )
            elif not track.seconds:
                found[name] = Outcome(error="no timed repeat ran")
            else:
                units = per if isinstance(per, int) else per[name]
                measurement = Measurement(
                    track.seconds, units, self.results.get(name), track.peak_rss_kib
                )
                found[name] = Outcome(measurement)
        return found


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `WorkloadTimeout` in the main thread after `seconds` (0: no limit).

    A blocked sync call is interrupted by the signal; async code should prefer
    `asyncio.wait_for` and keep this as a backstop for a blocked event loop.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise WorkloadTimeout(f"one run took longer than {seconds:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await `awaitable`, cancelling it after `seconds` (0: no limit) with `WorkloadTimeout`."""
    if seconds <= 0:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError as exc:
        raise WorkloadTimeout(f"one run took longer than {seconds:g} s (--timeout)") from exc


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _reset_peak_rss() -> int | None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS and return that, in KiB."""
    try:
        _CLEAR_REFS.write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return None


def _rss_rise(rss_before: int | None) -> int | None:
    try:
        peak = _status_kib("VmHWM")
    except OSError:
        return None
    return None if rss_before is None or peak is None else peak - rss_before


def _status_kib(key: str) -> int | None:
    found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    return int(found[1]) if found else None
