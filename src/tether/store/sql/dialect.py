"""How SQLite and Postgres spell the store's values: timestamps, JSON, vectors, placeholders,
and the match of a namespace and everything below it. No driver is imported here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.store.clock import as_datetime, as_micros
from tether.store.vectors import Vector, packed, unpacked


@dataclass(frozen=True, slots=True)
class Dialect:
    """One database's spelling.

    Attributes:
        param: the placeholder (`?` or `%s`); statements are written with `?`.
        json_in, json_out: how a JSON text goes into the value column and comes out as text.
        below: the pattern operator for "starts with" (GLOB or LIKE), `any_tail` its wildcard,
            `escape` what makes a namespace literal in a pattern.
        stamp, micros: a timestamp in microseconds to the column's type, and back.
        pack, unpack: a vector to the column's type, and back.
    """

    name: str
    param: str
    json_in: str
    json_out: str
    below: str
    any_tail: str
    escape: Callable[[str], str]
    stamp: Callable[[int], Any]
    micros: Callable[[Any], int]
    pack: Callable[[Vector], Any]
    unpack: Callable[[Any], Vector]

    def spell(self, sql: str) -> str:
        """`sql`, written with `?` placeholders, in this dialect."""
        return sql if self.param == "?" else sql.replace("?", self.param)

    def under(self, prefix: str, column: str = "prefix") -> tuple[str, tuple[str, ...]]:
        """The condition (and its parameters) for items in namespace `prefix` or below it."""
        if not prefix:
            return "TRUE", ()
        condition = f"({column} = ? OR {column} {self.below} ?)"
        return self.spell(condition), (prefix, self.escape(prefix) + "." + self.any_tail)


def _glob_literal(text: str) -> str:
    # GLOB has no ESCAPE clause: a metacharacter is made literal by a one-character class.
    return text.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pg_micros(value: dt.datetime) -> int:
    return as_micros(value)


def _pg_vector(value: Sequence[float]) -> Vector:
    return tuple(value)


SQLITE = Dialect(
    name="sqlite", param="?", json_in="?", json_out="value", below="GLOB", any_tail="*",
    escape=_glob_literal, stamp=int, micros=int, pack=packed, unpack=unpacked,
)
"""SQLite: timestamps are integer microseconds, vectors float32 blobs, values JSON text.
(GLOB, not LIKE: it is case-sensitive, as keys are.)"""

POSTGRES = Dialect(
    name="postgres", param="%s", json_in="%s::jsonb", json_out="value::text", below="LIKE",
    any_tail="%", escape=_like_literal, stamp=as_datetime, micros=_pg_micros, pack=list,
    unpack=_pg_vector,
)
"""Postgres: timestamps are `timestamptz`, vectors `real[]`, values `jsonb`."""

__all__ = ["POSTGRES", "SQLITE", "Dialect"]
