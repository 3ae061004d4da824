"""Which items a search returns, in what order, on every backend alike.

Without a query (or on a store without an index): the items that match the filter, oldest
first (creation order, as LangGraph's `InMemoryStore`), then `offset` and `limit`. With a query:
the matching items with vectors by their best cosine similarity to the query (ties: oldest
first), then those without vectors, oldest first; then `offset` and `limit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

from tether.store import filters
from tether.store.base.items import SearchItem
from tether.store.base.ops import SearchOp
from tether.store.records import Stored
from tether.store.vectors import Vector, best_scores


def page(op: SearchOp, rows: Iterable[Stored]) -> list[Stored]:
    """The page of `rows` (in creation order) that `op` returns when nothing is ranked.

    Reads `rows` only as far as the page needs.
    """
    matched = (row for row in rows if filters.matches(row.value, op.filter))
    return list(islice(matched, op.offset, op.offset + op.limit))


def page_of_first(op: SearchOp, rows: Sequence[Stored]) -> list[Stored] | None:
    """The page `op` returns, from `rows`: the first `offset + limit` items in creation order
    that a condition keeping at least every match of the filter kept (all of them when fewer);
    None when one of them does not match the filter after all, so that the page cannot be
    told from these rows.

    When each of those rows matches, they are the first matches: any match before the last
    of them also meets the condition, so it would be among them.
    """
    if all(filters.matches(row.value, op.filter) for row in rows):
        return list(rows[op.offset:op.offset + op.limit])
    return None


def ranked(op: SearchOp, rows: Iterable[tuple[Stored, Sequence[Vector]]],
           query: Vector) -> list[tuple[Stored, float | None]]:
    """The page `op` returns, ranked by similarity to `query`, with each item's score.

    `rows` are (item, its vectors) in creation order.
    """
    candidates = [(row, vectors) for row, vectors in rows
                  if filters.matches(row.value, op.filter)]
    scores = best_scores(query, [vectors for _, vectors in candidates])
    scored = [(row, score) for (row, _), score in zip(candidates, scores, strict=True)
              if score is not None]
    scored.sort(key=lambda pair: -pair[1])  # stable: ties keep creation order
    unscored = [(row, None) for (row, _), score in zip(candidates, scores, strict=True)
                if score is None]
    everything: list[tuple[Stored, float | None]] = [*scored, *unscored]
    return everything[op.offset:op.offset + op.limit]


def results(found: Iterable[tuple[Stored, float | None]]) -> list[SearchItem]:
    """The `SearchItem`s of a page."""
    return [row.search_item(score) for row, score in found]


__all__ = ["page", "page_of_first", "ranked", "results"]
