"""Vectors for semantic search: stored normalised, so a cosine similarity is a dot product.

Pure Python by default; NumPy, when it is installed, scores large candidate sets faster.
"""

from __future__ import annotations

import importlib
import math
import operator
from array import array
from collections.abc import Sequence
from functools import cache
from typing import Any

Vector = tuple[float, ...]


def normalised(vector: Sequence[float], dims: int, what: str) -> Vector:
    """`vector` scaled to length 1 (a zero vector stays zero).

    Raises:
        ValueError: its length is not `dims` (`what` names the text it embeds).
    """
    if len(vector) != dims:
        raise ValueError(f"the embedding of {what} has {len(vector)} dimensions; the store's "
                         f"index says dims={dims}")
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0.0:
        return tuple(0.0 for _ in vector)
    return tuple(x / norm for x in vector)


def similarity(query: Vector, vector: Vector) -> float:
    """Cosine similarity of two normalised vectors."""
    return math.fsum(map(operator.mul, query, vector))


def best_scores(query: Vector, groups: Sequence[Sequence[Vector]]) -> list[float | None]:
    """For each group (an item's vectors), its best similarity to `query`; None for an empty
    group."""
    numpy = _numpy()
    flat = [vector for group in groups for vector in group]
    if numpy is not None and len(flat) >= 64:
        scores: list[float] = (numpy.asarray(flat) @ numpy.asarray(query)).tolist()
    else:
        scores = [similarity(query, vector) for vector in flat]
    best: list[float | None] = []
    at = 0
    for group in groups:
        best.append(max(scores[at:at + len(group)]) if group else None)
        at += len(group)
    return best


def packed(vector: Vector) -> bytes:
    """A vector as little float32 bytes (the SQLite store's column)."""
    return array("f", vector).tobytes()


def unpacked(data: bytes) -> Vector:
    """A vector stored by `packed`."""
    values = array("f")
    values.frombytes(data)
    return tuple(values)


@cache
def _numpy() -> Any:
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


__all__ = ["Vector", "best_scores", "normalised", "packed", "similarity", "unpacked"]
