"""The operations a store executes in a batch (LangGraph's `GetOp`, `PutOp`, `SearchOp`,
`ListNamespacesOp`), and the rules every namespace follows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from tether.store.base.items import Item, SearchItem


class InvalidNamespaceError(ValueError):
    """A namespace (or a label in it) that no store accepts."""


class NotProvided:
    """The type of `NOT_PROVIDED`: an argument left out (as opposed to an explicit None)."""

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_PROVIDED = NotProvided()

NamespacePath = tuple[str, ...]
"""A namespace pattern; the label `"*"` matches any one label."""

NamespaceMatchType = Literal["prefix", "suffix"]


class GetOp(NamedTuple):
    """Read one item. `refresh_ttl`: restart its time to live (if it has one)."""

    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool = True


class SearchOp(NamedTuple):
    """Find items under `namespace_prefix`.

    `filter` keeps items whose value matches every entry: `{"field": value}` (equality) or
    `{"field": {"$gt": 3}}` with `$eq $ne $gt $gte $lt $lte`. `query` ranks items by semantic
    similarity (on a store with an `index`); otherwise items come oldest first. `refresh_ttl`
    restarts the time to live of the items returned.
    """

    namespace_prefix: tuple[str, ...]
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool = True


class MatchCondition(NamedTuple):
    """Namespaces that start (`"prefix"`) or end (`"suffix"`) with `path` (`"*"`: any label)."""

    match_type: NamespaceMatchType
    path: NamespacePath


class ListNamespacesOp(NamedTuple):
    """List namespaces that meet every condition, cut to `max_depth` labels, sorted."""

    match_conditions: tuple[MatchCondition, ...] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


class PutOp(NamedTuple):
    """Store `value` under (namespace, key), or delete the item when `value` is None.

    `index`: None embeds the fields of the store's `index` config, False none, a list of
    paths those. `ttl`: minutes the item lives after its last write (or read, when reads
    refresh), None for ever.
    """

    namespace: tuple[str, ...]
    key: str
    value: Mapping[str, Any] | None
    index: Literal[False] | list[str] | None = None  # type: ignore[assignment]
    ttl: float | None = None


Op = GetOp | SearchOp | PutOp | ListNamespacesOp
Result = Item | list[Item] | list[SearchItem] | list[tuple[str, ...]] | None


def validate_labels(namespace: tuple[str, ...]) -> None:
    """Every label is a non-empty string without `.` or NUL (`.` joins labels in SQL stores).

    Raises:
        InvalidNamespaceError: naming the label and the namespace.
    """
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(
                f"namespace {namespace!r}: label {label!r} is a {type(label).__name__}; "
                "labels are strings")
        if not label:
            raise InvalidNamespaceError(f"namespace {namespace!r}: a label is empty")
        if "." in label or "\x00" in label:
            raise InvalidNamespaceError(
                f"namespace {namespace!r}: label {label!r} contains "
                f"{'a period' if '.' in label else 'a NUL byte'}, which labels cannot")


def validate_namespace(namespace: tuple[str, ...]) -> None:
    """A namespace items can be stored under: non-empty, valid labels, not `"langgraph"`-rooted.

    Raises:
        InvalidNamespaceError: naming what is wrong.
    """
    if not isinstance(namespace, tuple) or not namespace:
        raise InvalidNamespaceError(
            f"namespace {namespace!r}: a namespace is a non-empty tuple of strings")
    validate_labels(namespace)
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(
            f"namespace {namespace!r}: the root label 'langgraph' is reserved")


def validate_op_namespace(op: Op) -> None:
    """Check the labels an op carries (ops given straight to `batch` skip the methods' checks).

    Raises:
        InvalidNamespaceError: a label is empty, not a string, or contains a period.
    """
    if isinstance(op, PutOp):
        if op.value is None:
            validate_labels(op.namespace)
        else:
            validate_namespace(op.namespace)
    elif isinstance(op, GetOp):
        validate_labels(op.namespace)
    elif isinstance(op, SearchOp):
        validate_labels(op.namespace_prefix)
    elif isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            validate_labels(condition.path)


__all__ = ["NOT_PROVIDED", "GetOp", "InvalidNamespaceError", "ListNamespacesOp",
           "MatchCondition", "NamespaceMatchType", "NamespacePath", "NotProvided", "Op",
           "PutOp", "Result", "SearchOp", "validate_labels", "validate_namespace",
           "validate_op_namespace"]
