"""How SQLite and Postgres spell the store's values: timestamps, JSON, vectors, placeholders,
and the match of a namespace and everything below it. No driver is imported here."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from tether.store.clock import as_datetime, as_micros
from tether.store.values import member_text
from tether.store.vectors import Vector, packed, unpacked


class Narrowing(NamedTuple):
    """SQL conditions that keep at least the rows a search filter matches (`Dialect.narrowing`).

    Attributes:
        sql: the conditions, joined by AND ("" when none).
        params: their parameters.
        whole: every entry of the filter has a condition, so the rows kept are almost always
            exactly those it matches (a search may then let the database apply its limit).
    """

    sql: str = ""
    params: tuple[Any, ...] = ()
    whole: bool = True


NO_NARROWING = Narrowing()
"""The narrowing of no filter: nothing to add."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """One database's spelling.

    Attributes:
        param: the placeholder (`?` or `%s`); statements are written with `?`.
        narrow: for one filter entry, a condition that keeps at least the rows it matches,
            or None (see `narrowing`).
        json_in, json_out: how a JSON text goes into the value column and comes out as text.
        below: `(column, text)` -> a condition on `column` beginning with `text`, and its
            parameters.
        stamp, micros: a timestamp in microseconds to the column's type, and back.
        pack, unpack: a vector to the column's type, and back.
    """

    name: str
    param: str
    narrow: Callable[[str, Any], tuple[str, tuple[Any, ...]] | None]
    json_in: str
    json_out: str
    below: Callable[[str, str], tuple[str, tuple[str, ...]]]
    stamp: Callable[[int], Any]
    micros: Callable[[Any], int]
    pack: Callable[[Vector], Any]
    unpack: Callable[[Any], Vector]

    def spell(self, sql: str) -> str:
        """`sql`, written with `?` placeholders, in this dialect."""
        return sql if self.param == "?" else sql.replace("?", self.param)

    def narrowing(self, filter: Mapping[str, Any] | None) -> Narrowing:
        """Conditions (and parameters) that keep at least every row `filter` matches, for the
        database to drop most others early; the filter itself is still applied to what it
        returns (`filters.py` is its one definition)."""
        if not filter:
            return NO_NARROWING
        conditions: list[str] = []
        params: list[Any] = []
        whole = True
        for field, wanted in filter.items():
            part = self.narrow(field, wanted) if isinstance(field, str) else None
            if part is None:
                whole = False
            else:
                conditions.append(part[0])
                params.extend(part[1])
        return Narrowing(" AND ".join(conditions), tuple(params), whole)

    def under(self, prefix: str, column: str = "prefix") -> tuple[str, tuple[str, ...]]:
        """The condition (and its parameters) for items in namespace `prefix` or below it."""
        if not prefix:
            return "TRUE", ()
        below, params = self.below(column, prefix + ".")
        return self.spell(f"({column} = ? OR {below})"), (prefix, *params)


def _sqlite_below(column: str, text: str) -> tuple[str, tuple[str, ...]]:
    # A range, not `GLOB 'text*'`: SQLite prepares a statement again each time a GLOB or LIKE
    # pattern given as a parameter is bound (the pattern can change the plan), which was a
    # sixth of a short search. Texts compare by code point (the BINARY collation), so those
    # beginning with `text` are those from `text` up to, not including, `text` with its last
    # character's successor.
    return (f"({column} >= ? AND {column} < ?)",
            (text, text[:-1] + chr(ord(text[-1]) + 1)))


def _postgres_below(column: str, text: str) -> tuple[str, tuple[str, ...]]:
    # LIKE, as the database's collation may not order texts by code point.
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE ?", (literal + "%",)


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
    # Parsing every row's JSON is most of such a search's time: for a string, the member's
    # own text (`values.member_text`, in every value that has it) is looked for first, which
    # costs a fraction of a parse and spares it for the rows without it.
    if not _PLAIN_FIELD.match(field) or isinstance(wanted, Mapping) or wanted is None:
        return None
    path = f'$."{field}"'
    if isinstance(wanted, str):
        return ("instr(value, ?) > 0 AND json_extract(value, ?) = ?",
                (member_text(field, wanted), path, wanted))
    if isinstance(wanted, bool) or (isinstance(wanted, (int, float))
                                    and abs(wanted) < _EXACT_INT):
        return "json_extract(value, ?) = ?", (path, wanted)
    return None


def _postgres_narrow(field: str, wanted: Any) -> tuple[str, tuple[Any, ...]] | None:
    # Equality to a string: `->>` gives a JSON string unquoted (and a number as its text,
    # which the filter then drops).
    return ("value ->> %s = %s", (field, wanted)) if isinstance(wanted, str) else None


SQLITE = Dialect(
    name="sqlite", param="?", narrow=_sqlite_narrow, json_in="?", json_out="value",
    below=_sqlite_below, stamp=int, micros=int, pack=packed, unpack=unpacked,
)
"""SQLite: timestamps are integer microseconds, vectors float32 blobs, values JSON text."""

POSTGRES = Dialect(
    name="postgres", param="%s", narrow=_postgres_narrow, json_in="%s::jsonb",
    json_out="value::text", below=_postgres_below, stamp=as_datetime,
    micros=_pg_micros, pack=list, unpack=_pg_vector,
)
"""Postgres: timestamps are `timestamptz`, vectors `real[]`, values `jsonb`."""

__all__ = ["NO_NARROWING", "POSTGRES", "SQLITE", "Dialect", "Narrowing"]
