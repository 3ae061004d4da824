"""What a search `filter` means, on every backend alike.

A filter maps a field of the item's value to a condition, and every condition must hold:

- a plain value: equality. A dict matches a dict that has at least its keys with matching
  values (recursively); a list matches a list of the same length, item by item.
- a dict of operators: `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`. Order comparisons hold
  between two numbers or two strings; a missing field or a value of another type never
  matches them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}
OPERATORS = frozenset({"$eq", "$ne", *_ORDER})


def validate(filter: Mapping[str, Any] | None) -> None:
    """Refuse a filter no store can apply.

    Raises:
        ValueError: the filter is not a mapping, or uses an unknown `$` operator.
    """
    if filter is None:
        return
    if not isinstance(filter, Mapping):
        raise TypeError(f"a search filter is a dict of field -> condition, not "
                         f"{type(filter).__name__}")
    for field, condition in filter.items():
        if _is_operators(condition):
            unknown = sorted(set(condition) - OPERATORS)
            if unknown:
                raise ValueError(f"filter on {field!r}: unknown operator {unknown[0]!r} "
                                 f"(use {', '.join(sorted(OPERATORS))})")


def matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item's value meets every condition of `filter` (None: no conditions)."""
    if not filter:
        return True
    return all(_holds(value.get(field), condition) for field, condition in filter.items())


def _is_operators(condition: Any) -> bool:
    return isinstance(condition, Mapping) and any(
        isinstance(key, str) and key.startswith("$") for key in condition)


def _holds(found: Any, condition: Any) -> bool:
    if _is_operators(condition):
        return all(_apply(found, name, operand) for name, operand in condition.items())
    return _equal(found, condition)


def _equal(found: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        return isinstance(found, Mapping) and all(
            _equal(found.get(key), item) for key, item in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return (isinstance(found, (list, tuple)) and len(found) == len(wanted)
                and all(_equal(a, b) for a, b in zip(found, wanted, strict=True)))
    return bool(found == wanted)


def _apply(found: Any, name: str, operand: Any) -> bool:
    if name == "$eq":
        return _equal(found, operand)
    if name == "$ne":
        return not _equal(found, operand)
    compare = _ORDER[name]
    if _number(found) and _number(operand):
        return compare(found, operand)
    if isinstance(found, str) and isinstance(operand, str):
        return compare(found, operand)
    return False


def _number(value: Any) -> bool:
    return isinstance(value, (int, float))


__all__ = ["OPERATORS", "matches", "validate"]
