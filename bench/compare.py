"""Compares the final states the two libraries return for the same workload."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_DIFFERENCES = 6
_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = 4
_short.maxdict = 4


def differences(tether: Any, langgraph: Any) -> list[str]:
    """Where `tether` differs from `langgraph`, as short lines naming the path; [] when equal."""
    found: list[str] = []
    _walk(tether, langgraph, "result", found)
    if len(found) > _MAX_DIFFERENCES:
        found[_MAX_DIFFERENCES:] = [f"... and {len(found) - _MAX_DIFFERENCES} more"]
    return found


def _walk(ours: Any, theirs: Any, path: str, found: list[str]) -> None:
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        if type(ours) is not type(theirs):
            kinds = f"tether gives a {type(ours).__name__}, LangGraph a {type(theirs).__name__}"
            found.append(f"{path}: {kinds}")
        _walk_mapping(ours, theirs, path, found)
    elif _is_sequence(ours) and type(ours) is type(theirs):
        _walk_sequence(ours, theirs, path, found)
    elif type(ours) is not type(theirs) and not _both_numbers(ours, theirs):
        found.append(
            f"{path}: tether gives {type(ours).__name__} {_short.repr(ours)}, "
            f"LangGraph {type(theirs).__name__} {_short.repr(theirs)}"
        )
    elif ours != theirs:
        found.append(f"{path}: tether {_short.repr(ours)} != LangGraph {_short.repr(theirs)}")


def _walk_mapping(
    ours: Mapping[Any, Any], theirs: Mapping[Any, Any], path: str, found: list[str]
) -> None:
    missing = [key for key in theirs if key not in ours]
    extra = [key for key in ours if key not in theirs]
    if missing:
        found.append(f"{path}: keys missing in tether: {_short.repr(sorted(map(str, missing)))}")
    if extra:
        found.append(f"{path}: keys only in tether: {_short.repr(sorted(map(str, extra)))}")
    for key in theirs:
        if key in ours:
            _walk(ours[key], theirs[key], f"{path}[{key!r}]", found)


def _walk_sequence(ours: Sequence[Any], theirs: Sequence[Any], path: str, found: list[str]) -> None:
    if ours == theirs:
        return
    first = next(
        (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
        min(len(ours), len(theirs)),
    )
    detail = f"first difference at [{first}]"
    if first < min(len(ours), len(theirs)):
        detail += f": tether {_short.repr(ours[first])} != LangGraph {_short.repr(theirs[first])}"
    lengths = "" if len(ours) == len(theirs) else f"length {len(ours)} vs {len(theirs)}, "
    found.append(f"{path}: {lengths}{detail}")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _both_numbers(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float)
