"""What a JSON value in a request may hold: finite numbers, valid Unicode, bounded nesting, and,
where the stores keep it as JSON (metadata, config, search filters), no NUL character.

Python's `json` reads `NaN`, `Infinity` and `"\\ud800"` without complaint; values like these, or
nested hundreds of levels deep, could be stored and then never be written back out as JSON. So
they are refused on the way in, with a 422 naming where they are (`checked`, used by the request
models), and a store never holds a value the server cannot answer with.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_DEPTH = 100
"""The deepest nesting of lists and objects a request value may have."""


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
            found = _text_problem(item, nul)
            if found is not None:
                return f"{found} at {where or 'the top'}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"a number that is not finite ({item}) at {where or 'the top'}"
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                return f"nesting deeper than {MAX_DEPTH} levels at {where or 'the top'}"
            if isinstance(item, dict):
                for key, inner in item.items():
                    found = _text_problem(str(key), nul)
                    if found is not None:
                        return f"{found} in a key at {where or 'the top'}"
                    stack.append((inner, f"{where}.{_shown(str(key))}", depth + 1))
            else:
                stack.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))
    return None


def _text_problem(text: str, nul: bool) -> str | None:
    if text.isascii():
        return "a NUL character" if not nul and "\x00" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (text that is not valid Unicode)"
    return "a NUL character" if not nul and "\x00" in text else None


def _shown(key: str) -> str:
    shown = key.encode("ascii", "backslashreplace").decode()
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _check_value(value: Any) -> Any:
    found = problem(value)
    if found is not None:
        raise ValueError(f"cannot be stored: {found}")
    return value


def _check_kept_as_json(value: Any) -> Any:
    found = problem(value, nul=False)
    if found is not None:
        raise ValueError(f"cannot be stored: {found}")
    return value


def _check_text(text: str) -> str:
    found = _text_problem(text, nul=False)
    if found is not None:
        raise ValueError(f"cannot be used: {found}")
    return text


JsonValue = Annotated[Any, AfterValidator(_check_value)]
"""Any JSON value fit to keep (inputs, state values, commands, context)."""
JsonObject = Annotated[dict[str, Any], AfterValidator(_check_kept_as_json)]
"""A JSON object the stores keep as JSON (metadata, config, filters): no NUL either."""
Text = Annotated[str, AfterValidator(_check_text)]
"""A name or id: valid Unicode without NUL (a store could not look it up)."""


__all__ = ["MAX_DEPTH", "JsonObject", "JsonValue", "Text", "problem"]
