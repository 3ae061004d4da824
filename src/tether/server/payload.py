"""What a JSON value in a request may hold: finite numbers, valid Unicode, bounded nesting, and,
where the stores keep it as JSON (metadata, config, search filters), no NUL character.

Python's `json` reads `NaN`, `Infinity` and `"\\ud800"` without complaint; values like these, or
nested hundreds of levels deep, could be stored and then never be written back out as JSON. So
they are refused on the way in, with a 422 naming where they are (`checked`, used by the request
models), and a store never holds a value the server cannot answer with. The rule itself is
`tether.checkpoint.json_fit`'s, which the stores apply to metadata given through the Python API.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from tether.checkpoint.json_fit import MAX_DEPTH, problem, text_problem


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
    found = text_problem(text, nul=False)
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
