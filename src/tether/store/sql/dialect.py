"""How SQLite and Postgres spell the store's values: timestamps, JSON, vectors, placeholders,
and the match of a namespace and everything below it. No driver is imported here."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.store.clock import as_datetime, as_micros
from tether.store.vectors import Vector, packed, unpacked


@dataclass(frozen=True, slots=True)
class Dialect:
    """One database's spelling.

    Attributes:
        param: the placeholder (`?` or `%s`); statements are written with `?`.
        narrow: for one filter entry, a condition that keeps at least the rows it matches,
            or None (see `narrowing`).
        json_in, json_out: how a JSON text goes into the value column and comes out as text.
        below: the pattern operator for "starts with" (GLOB or LIKE), `any_tail` its wildcard,
            `escape` what makes a namespace literal in a pattern.
        stamp, micros: a timestamp in microseconds to the column's type, and back.
        pack, unpack: a vector to the column's type, and back.
    """

    name: str
    param: str
    narrow: Callable[[str, Any], tuple[str, tuple[Any, ...]] | None]
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

    def narrowing(self, filter: Mapping[str, Any] | None) -> tuple[str, tuple[Any, ...]]:
        """Conditions (and parameters) that keep at least every row `filter` matches, for the
        database to drop most others early; the filter itself is still applied to what it
        returns (`filters.py` is its one definition). `("", ())` when nothing narrows."""
        found = [self.narrow(field, wanted) for field, wanted in (filter or {}).items()
                 if isinstance(field, str)]
        parts = [part for part in found if part is not None]
        return (" AND ".join(sql for sql, _ in parts),
                tuple(p for _, params in parts for p in params))

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


_PLAIN_FIELD = re.compile(r"^[A-Za-z0-9_-]+$")
_EXACT_INT = 2**53


def _sqlite_narrow(field: str, wanted: Any) -> tuple[str, tuple[Any, ...]] | None:
    # Equality to a string, number or bool: `json_extract` gives the text of a JSON string,
    # the number of a JSON number, 1 or 0 for true or false — the same matches as Python's
    # `==` (True == 1), plus objects whose JSON text equals a wanted string (re-checked).
    if not _PLAIN_FIELD.match(field) or isinstance(wanted, Mapping) or wanted is None:
        return None
    if isinstance(wanted, (str, bool)) or (isinstance(wanted, (int, float))
                                           and abs(wanted) < _EXACT_INT):
        return "json_extract(value, ?) = ?", (f'$."{field}"', wanted)
    return None


def _postgres_narrow(field: str, wanted: Any) -> tuple[str, tuple[Any, ...]] | None:
    # Equality to a string: `->>` gives a JSON string unquoted (and a number as its text,
    # which the filter then drops).
    return ("value ->> %s = %s", (field, wanted)) if isinstance(wanted, str) else None


SQLITE = Dialect(
    name="sqlite", param="?", narrow=_sqlite_narrow, json_in="?", json_out="value",
    below="GLOB", any_tail="*", escape=_glob_literal, stamp=int, micros=int, pack=packed,
    unpack=unpacked,
)
"""SQLite: timestamps are integer microseconds, vectors float32 blobs, values JSON text.
(GLOB, not LIKE: it is case-sensitive, as keys are.)"""

POSTGRES = Dialect(
    name="postgres", param="%s", narrow=_postgres_narrow, json_in="%s::jsonb",
    json_out="value::text", below="LIKE", any_tail="%", escape=_like_literal, stamp=as_datetime,
    micros=_pg_micros, pack=list, unpack=_pg_vector,
)
"""Postgres: timestamps are `timestamptz`, vectors `real[]`, values `jsonb`."""

__all__ = ["POSTGRES", "SQLITE", "Dialect"]
