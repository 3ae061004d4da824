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
import functools
import json
import uuid
from collections.abc import Mapping
from typing import Any, Final, cast

from tether.errors import SerializationError

_encode: Final = functools.partial(json.dumps, allow_nan=False, ensure_ascii=False,
                                   separators=(",", ":"))
"""How values are written as JSON (by `dumps`, the same ever since the SQL stores exist)."""
_string: Final = json.encoder.encode_basestring
"""How `_encode` writes a string (its encoder's, with `ensure_ascii=False`), without making an
encoder for each call."""
_raw_decode = json.JSONDecoder().raw_decode


def dumps(value: Mapping[str, Any], where: str) -> str:
    """`value` as JSON text; `where` names the item in errors.

    Raises:
        SerializationError: something in `value` has no JSON form (or is NaN / infinite).
    """
    try:
        return _encode(value, default=_jsonable)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot store the value of {where}: {exc}") from None


def member_text(name: str, text: str) -> str:
    """What `dumps` writes for the member `name` of a value when it is the string `text`: the
    JSON of every value with that member contains it (a search can look for it in the stored
    text before parsing any)."""
    return f"{_string(name)}:{_string(text)}"


def loads(text: str | bytes) -> dict[str, Any]:
    """A value stored by `dumps`."""
    # `dumps` writes JSON with nothing around it, which the decoder's own entry point reads
    # without `json.loads`'s two passes over surrounding whitespace (half the time of a small
    # value); any other text goes through `json.loads`, which reads or refuses it as ever.
    loaded: dict[str, Any]
    if isinstance(text, str):
        try:
            loaded, end = _raw_decode(text)
        except ValueError:
            pass
        else:
            if end == len(text):
                return loaded
    return cast("dict[str, Any]", json.loads(text))


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


__all__ = ["copied", "dumps", "loads", "member_text"]
