"""Which namespaces `list_namespaces` returns: those meeting every match condition, cut to
`max_depth` labels and merged, sorted, then `offset` and `limit`."""

from __future__ import annotations

from collections.abc import Iterable

from tether.store.base.ops import ListNamespacesOp, MatchCondition

ANY_LABEL = "*"


def listed(namespaces: Iterable[tuple[str, ...]], op: ListNamespacesOp) -> list[tuple[str, ...]]:
    """The result of `op` over the namespaces that hold items."""
    conditions = op.match_conditions or ()
    kept = {ns[:op.max_depth] if op.max_depth is not None else ns
            for ns in namespaces if all(matches(c, ns) for c in conditions)}
    return sorted(kept)[op.offset:op.offset + op.limit]


def matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether `namespace` starts (or ends) with the condition's path; `"*"` is any label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        labels = namespace[:len(path)]
    elif condition.match_type == "suffix":
        labels = namespace[len(namespace) - len(path):]
    else:
        raise ValueError(f"unknown match_type {condition.match_type!r} (prefix or suffix)")
    return all(want in (ANY_LABEL, label) for want, label in zip(path, labels, strict=True))


def fixed_prefix(op: ListNamespacesOp) -> tuple[str, ...]:
    """The labels every listed namespace must start with (for a backend to narrow its scan)."""
    longest: tuple[str, ...] = ()
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix":
            labels = tuple(condition.path)
            fixed = labels[:labels.index(ANY_LABEL)] if ANY_LABEL in labels else labels
            longest = max(longest, fixed, key=len)
    return longest


__all__ = ["fixed_prefix", "listed", "matches"]
