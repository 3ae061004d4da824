"""What a value the stores keep as JSON may hold: finite numbers, valid Unicode, bounded nesting,
and (where it is kept as JSON: metadata, search filters) no NUL character.

Python's `json` writes `NaN`, `Infinity` and lone surrogates without complaint, but SQLite's JSON
functions and PostgreSQL's `jsonb` refuse them, and no JSON client can read them back. One rule,
here, decides what is refused, so that every store (memory, SQLite, Postgres) refuses the same
metadata with the same message, and the server's request models refuse it with a 422 before it
reaches a store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 100
"""The deepest nesting of lists and objects a kept value may have."""


def problem(value: Any, *, nul: bool = True) -> str | None:
    """What makes `value` unfit to keep (with where it is), or None when it is fine.

    Args:
        nul: whether strings may hold NUL (`\\x00`); PostgreSQL's JSON cannot.
    """
    # An explicit stack: the value may be nested deeper than Python recurses.
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            found = text_problem(item, nul=nul)
            if found is not None:
                return f"{found} at {where or 'the top'}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"a number that is not finite ({item}) at {where or 'the top'}"
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                return f"nesting deeper than {MAX_DEPTH} levels at {where or 'the top'}"
            if isinstance(item, dict):
                for key, inner in item.items():
                    found = text_problem(str(key), nul=nul)
                    if found is not None:
                        return f"{found} in a key at {where or 'the top'}"
                    stack.append((inner, f"{where}.{_shown(str(key))}", depth + 1))
            else:
                stack.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))
    return None


def text_problem(text: str, *, nul: bool) -> str | None:
    """What makes one string unfit to keep, or None."""
    if text.isascii():
        return "a NUL character" if not nul and "\x00" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (text that is not valid Unicode)"
    return "a NUL character" if not nul and "\x00" in text else None


def check_metadata(metadata: Mapping[str, Any] | None, what: str = "metadata") -> None:
    """Refuse metadata (or a metadata filter) that a store could not keep as JSON.

    Raises:
        ValueError: naming what is wrong and where, e.g. ``thread metadata cannot be stored:
            a number that is not finite (nan) at .score``. Nothing has been stored.
    """
    if not metadata:
        return
    found = problem(dict(metadata), nul=False)
    if found is not None:
        raise ValueError(f"{what} cannot be stored: {found}")


def _shown(key: str) -> str:
    shown = key.encode("ascii", "backslashreplace").decode()
    return shown if len(shown) <= 40 else shown[:37] + "..."


__all__ = ["MAX_DEPTH", "check_metadata", "problem", "text_problem"]
