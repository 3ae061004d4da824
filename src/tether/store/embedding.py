"""Embedding the texts of a batch (`plan.py`) before it touches the database, so that a
transaction never waits on an embedding model: `embed` for sync calls, `aembed` for async."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from tether.store.index import Index
from tether.store.plan import ItemKey, Plan
from tether.store.vectors import Vector, normalised


@dataclass(frozen=True, slots=True)
class Embedded:
    """The vectors of a batch: per item written, its (field, vector) pairs; per query, its
    vector. All normalised."""

    docs: dict[ItemKey, list[tuple[str, Vector]]] = field(default_factory=dict)
    queries: dict[str, Vector] = field(default_factory=dict)


NOTHING = Embedded()


def embed(plan: Plan, index: Index | None) -> Embedded:
    """The vectors `plan` needs, from the index's sync embedding calls."""
    if index is None or not (plan.texts or plan.queries):
        return NOTHING
    docs = index.embeddings.embed_documents([t.text for t in plan.texts]) if plan.texts else []
    queries = [index.embeddings.embed_query(query) for query in plan.queries]
    return _assembled(plan, index, docs, queries)


async def aembed(plan: Plan, index: Index | None) -> Embedded:
    """The vectors `plan` needs, from the index's async embedding calls.

    Cancellation:
        The embedding calls are cancelled (a sync function's thread abandoned); nothing has
        been stored yet, so the batch is safe to retry.
    """
    if index is None or not (plan.texts or plan.queries):
        return NOTHING
    embeddings = index.embeddings
    docs = (await embeddings.aembed_documents([t.text for t in plan.texts])
            if plan.texts else [])
    queries = await asyncio.gather(*(embeddings.aembed_query(q) for q in plan.queries))
    return _assembled(plan, index, docs, list(queries))


def _assembled(plan: Plan, index: Index, docs: Sequence[Sequence[float]],
               queries: Sequence[Sequence[float]]) -> Embedded:
    if len(docs) != len(plan.texts):
        raise ValueError(f"the store's embed function returned {len(docs)} vectors for "
                         f"{len(plan.texts)} texts")
    embedded = Embedded()
    for text, vector in zip(plan.texts, docs, strict=True):
        what = f"{text.item[0]!r}/{text.item[1]!r} field {text.field!r}"
        vectors = embedded.docs.setdefault(text.item, [])
        vectors.append((text.field, normalised(vector, index.dims, what)))
    for query, vector in zip(plan.queries, queries, strict=True):
        embedded.queries[query] = normalised(vector, index.dims, f"query {query!r}")
    return embedded


__all__ = ["NOTHING", "Embedded", "aembed", "embed"]
