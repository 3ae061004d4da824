"""What a failed run records about where it failed: the node, and a short traceback.

A run's `error` says what went wrong (`KeyError: 'topic'`); this says where: the innermost
frames of the code that raised, without the runtime's own frames (tether, anyio, asyncio and
thread-pool plumbing), as Python prints them.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import anyio

import tether

TRACEBACK_FRAMES = 5
"""How many of the innermost frames a run's record keeps."""

_PLUMBING = tuple(str(Path(p).resolve()) for p in (
    Path(tether.__file__).parent,        # the runtime itself
    Path(anyio.__file__).parent,         # task groups and cancel scopes
    Path(traceback.__file__).parent / "asyncio",
    Path(traceback.__file__).parent / "concurrent",
    Path(traceback.__file__).parent / "threading.py",
    Path(traceback.__file__).parent / "contextvars.py",
))


def short_traceback(error: BaseException, frames: int = TRACEBACK_FRAMES) -> str | None:
    """The innermost `frames` frames of user code that `error` went through, formatted, with
    the exception's last line. None when the exception carries no traceback.

    When every frame is the runtime's own (an error raised by tether itself, such as a node
    returning an unknown key), the innermost frames are kept as they are.
    """
    summary = traceback.extract_tb(error.__traceback__)
    if not summary:
        return None
    own = [frame for frame in summary if not _is_plumbing(frame.filename)]
    kept = (own or list(summary))[-frames:]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(kept),
             *traceback.format_exception_only(type(error), error)]
    return "".join(lines).rstrip("\n")


def _is_plumbing(filename: str) -> bool:
    try:
        resolved = str(Path(filename).resolve())
    except OSError:
        return False
    return resolved.startswith(_PLUMBING)


__all__ = ["TRACEBACK_FRAMES", "short_traceback"]
