"""How item values are held: as JSON text in the SQL stores, as private copies in memory.

The SQL stores keep each value as JSON (so other tools can read it). Beyond JSON's own types
they accept what LangGraph's SQL stores accept: datetimes, dates and times (stored as ISO
text), UUIDs (text), enums (their value), dataclasses and pydantic models (their fields). Such
values come back as plain JSON, as they do from LangGraph's stores.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Mapping
from typing import Any

from tether.errors import SerializationError


def dumps(value: Mapping[str, Any], where: str) -> str:
    """`value` as JSON text; `where` names the item in errors.

    Raises:
        SerializationError: something in `value` has no JSON form (or is NaN / infinite).
    """
    try:
        return json.dumps(value, default=_jsonable, allow_nan=False, ensure_ascii=False,
                          separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot store the value of {where}: {exc}") from None


def loads(text: str | bytes) -> dict[str, Any]:
    """A value stored by `dumps`."""
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"values of type {type(obj).__qualname__} have no JSON form")


def copied(value: Any) -> Any:
    """A copy of a value's dicts and lists (the memory store's private copy; leaves are
    shared, as they are immutable in JSON-like data)."""
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) for item in value]
    return value


__all__ = ["copied", "dumps", "loads"]
