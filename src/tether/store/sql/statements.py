"""Every statement of the SQL stores' operations, spelled for one dialect (no I/O).

Tables (made by each backend's migrations): `store_items` (one row per item: namespace text
`prefix`, `key`, JSON `value`, timestamps, `ttl_minutes`, and `seq`, the creation order) and
`store_vectors` (an item's vectors by field, deleted with the item).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tether.store.sql.dialect import NO_NARROWING, Dialect, Narrowing


class Statements:
    """The statements for `dialect` (get one with `statements_for`)."""

    def __init__(self, dialect: Dialect) -> None:
        d = self.dialect = dialect
        self.columns = (f"prefix, key, {d.json_out}, created_at, updated_at, expires_at, "
                        "ttl_minutes, seq")
        self.live = "(expires_at IS NULL OR expires_at > ?)"
        self.get = d.spell(f"SELECT {self.columns} FROM store_items "
                           f"WHERE prefix = ? AND key = ? AND {self.live}")
        self.refresh = d.spell("UPDATE store_items SET expires_at = ? WHERE seq = ?")
        self.delete = d.spell("DELETE FROM store_items WHERE prefix = ? AND key = ?")
        self.delete_if_expired = d.spell(
            "DELETE FROM store_items WHERE prefix = ? AND key = ? AND expires_at <= ?")
        self.upsert = d.spell(
            "INSERT INTO store_items (prefix, key, value, created_at, updated_at, expires_at, "
            f"ttl_minutes) VALUES (?, ?, {d.json_in}, ?, ?, ?, ?) "
            "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at, expires_at = excluded.expires_at, "
            "ttl_minutes = excluded.ttl_minutes RETURNING seq")
        self.delete_vectors = d.spell("DELETE FROM store_vectors WHERE item = ?")
        self.insert_vector = d.spell(
            "INSERT INTO store_vectors (item, field, vector) VALUES (?, ?, ?)")
        self.sweep = d.spell("DELETE FROM store_items WHERE expires_at <= ? RETURNING seq")

    def search(self, prefix: str, *, paged: bool, narrowing: Narrowing = NO_NARROWING
               ) -> tuple[str, tuple[Any, ...]]:
        """Live items under `prefix` that meet `narrowing` (see `Dialect.narrowing`), in
        creation order; the parameters after those returned are `now` (then limit and offset
        when `paged`)."""
        condition, params = self.dialect.under(prefix)
        extra, extra_params, _ = narrowing
        if extra:
            condition = f"{condition} AND {extra}"
        sql = (f"SELECT {self.columns} FROM store_items WHERE {condition} "
               f"AND {self.live} ORDER BY seq")
        return (self.dialect.spell(sql + (" LIMIT ? OFFSET ?" if paged else "")),
                (*params, *extra_params))

    def vectors_under(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        """(item seq, vector) of the live items under `prefix`; then the parameter `now`."""
        condition, params = self.dialect.under(prefix, "s.prefix")
        return self.dialect.spell(
            "SELECT v.item, v.vector FROM store_vectors v JOIN store_items s ON s.seq = v.item "
            f"WHERE {condition} AND (s.expires_at IS NULL OR s.expires_at > ?)"), params

    def namespaces(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        """The distinct namespaces with live items under `prefix`; then the parameter `now`."""
        condition, params = self.dialect.under(prefix)
        return self.dialect.spell(
            f"SELECT DISTINCT prefix FROM store_items WHERE {condition} AND {self.live}"), params


@cache
def statements_for(dialect: Dialect) -> Statements:
    """The statements of `dialect`, made once."""
    return Statements(dialect)


__all__ = ["Statements", "statements_for"]
