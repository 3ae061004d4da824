"""A batch of ops, checked and sorted out before any I/O: the reads by kind, the writes (the
last op for each key wins), and the texts the batch needs embedded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tether.store import filters
from tether.store.base.ops import (
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    SearchOp,
    validate_op_namespace,
)
from tether.store.index import Index

ItemKey = tuple[tuple[str, ...], str]
"""(namespace, key): where an item lives."""


@dataclass(frozen=True, slots=True)
class DocText:
    """One text of an item being written, to be embedded as the vector of `field`."""

    item: ItemKey
    field: str
    text: str


@dataclass(slots=True)
class Plan:
    """What a batch does. Reads run first and see the store as it was before the batch;
    writes then apply together.

    Attributes:
        size: the number of ops (and results).
        writes: one `PutOp` per key written (a delete has value None), in first-seen order.
        texts: the texts of `writes` to embed (on a store with an index).
        queries: the distinct search queries to embed (on a store with an index).
    """

    size: int = 0
    gets: list[tuple[int, GetOp]] = field(default_factory=list)
    searches: list[tuple[int, SearchOp]] = field(default_factory=list)
    listings: list[tuple[int, ListNamespacesOp]] = field(default_factory=list)
    writes: list[PutOp] = field(default_factory=list)
    texts: list[DocText] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, ops: Iterable[Op], index: Index | None) -> Plan:
        """The plan of `ops` on a store with `index`.

        Raises:
            InvalidNamespaceError: an op's namespace is invalid.
            TypeError: an op is not a store op, or a put's value is not a mapping.
            ValueError: a negative limit, offset or ttl, a bad `max_depth`, or a bad filter.
        """
        plan = cls()
        writes: dict[ItemKey, PutOp] = {}
        for i, op in enumerate(ops):
            plan.size += 1
            validate_op_namespace(op)
            if isinstance(op, GetOp):
                plan.gets.append((i, op))
            elif isinstance(op, SearchOp):
                _check_search(op)
                plan.searches.append((i, op))
            elif isinstance(op, ListNamespacesOp):
                _check_listing(op)
                plan.listings.append((i, op))
            elif isinstance(op, PutOp):
                _check_put(op)
                writes[(op.namespace, op.key)] = op
            else:
                raise TypeError(
                    f"not a store op: {op!r} (GetOp, PutOp, SearchOp or ListNamespacesOp)")
        plan.writes = list(writes.values())
        if index is not None:
            plan.texts = [DocText((op.namespace, op.key), name, text)
                          for op in plan.writes for name, text in index.texts(op)]
            plan.queries = list(dict.fromkeys(op.query for _, op in plan.searches if op.query))
        return plan


def _check_search(op: SearchOp) -> None:
    _check_page(op.limit, op.offset, "search")
    filters.validate(op.filter)


def _check_listing(op: ListNamespacesOp) -> None:
    _check_page(op.limit, op.offset, "list_namespaces")
    depth = op.max_depth
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ValueError(f"list_namespaces: max_depth must be a positive int, not {depth!r}")


def _check_put(op: PutOp) -> None:
    if op.value is not None and not isinstance(op.value, Mapping):
        raise TypeError(f"put {op.namespace!r}/{op.key!r}: the value must be a dict (a mapping "
                        f"of str keys), not {type(op.value).__name__}")
    if op.ttl is not None and not (isinstance(op.ttl, (int, float)) and op.ttl > 0):
        raise ValueError(f"put {op.namespace!r}/{op.key!r}: ttl is minutes > 0 or None, "
                         f"not {op.ttl!r}")


def _check_page(limit: int, offset: int, what: str) -> None:
    for name, number in (("limit", limit), ("offset", offset)):
        if not isinstance(number, int) or number < 0:
            raise ValueError(f"{what}: {name} must be an int >= 0, not {number!r}")


__all__ = ["DocText", "ItemKey", "Plan"]
