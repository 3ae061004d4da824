"""What one state changed from the last: the differences the page shows between two steps.

A change names a path into the state (`["messages"]`, `["profile", "name"]`) and what happened
there: a key `added` or `removed`, a value `changed` (before and after), or items `appended` to
a list (the common case of a reducer that adds: only the new items are shown). Values are the
JSON-ready form the server sends, so the page renders them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["added", "removed", "changed", "appended"]

MAX_DEPTH = 4
"""How deep into nested objects a diff looks before it reports a whole value as changed."""


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two states."""

    path: tuple[str, ...]
    op: Op
    before: Any = None
    after: Any = None

    def to_json(self) -> dict[str, Any]:
        """The change as the page reads it (`before`/`after` only where they mean something)."""
        out: dict[str, Any] = {"path": list(self.path), "op": self.op}
        if self.op in ("removed", "changed"):
            out["before"] = self.before
        if self.op != "removed":
            out["after"] = self.after
        return out


def diff(before: Any, after: Any) -> list[Change]:
    """The changes that turn `before` into `after` (both JSON-ready), in key order.

    Objects are compared key by key (up to `MAX_DEPTH` levels); a list that only grew at its
    end is reported as the items `appended`; anything else that differs is `changed` whole.
    """
    found: list[Change] = []
    _walk((), before, after, found)
    return found


def _walk(path: tuple[str, ...], before: Any, after: Any, found: list[Change]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict) and len(path) < MAX_DEPTH:
        for key in _keys(before, after):
            sub = (*path, str(key))
            if key not in after:
                found.append(Change(sub, "removed", before=before[key]))
            elif key not in before:
                found.append(Change(sub, "added", after=after[key]))
            else:
                _walk(sub, before[key], after[key], found)
        return
    if (isinstance(before, list) and isinstance(after, list) and path
            and len(after) > len(before) and after[:len(before)] == before):
        found.append(Change(path, "appended", after=after[len(before):]))
        return
    found.append(Change(path, "changed", before=before, after=after))


def _keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Keys of both, in the order `before` has them, then those `after` adds."""
    return [*before, *(k for k in after if k not in before)]


__all__ = ["MAX_DEPTH", "Change", "diff"]
