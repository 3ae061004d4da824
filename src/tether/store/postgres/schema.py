"""The Postgres store's tables, made beside PostgresSaver's in the same schema, with their own
version (`store_schema`): version N is the result of applying `MIGRATIONS[:N]`."""

from __future__ import annotations

from typing import Final

from tether.checkpoint.query import Op, Query
from tether.errors import SchemaVersionError

# Append-only: a released step is never edited, only followed by a new one. Vectors are plain
# `real[]` scored in Python: pgvector is not required (nor used).
MIGRATIONS: Final[tuple[str, ...]] = (
    """CREATE TABLE store_items (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        prefix text NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        expires_at timestamptz,
        ttl_minutes double precision,
        UNIQUE (prefix, key)
    );
    CREATE INDEX store_items_by_prefix ON store_items (prefix text_pattern_ops);
    CREATE INDEX store_items_expiry ON store_items (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE store_vectors (
        item bigint NOT NULL REFERENCES store_items (seq) ON DELETE CASCADE,
        field text NOT NULL,
        vector real[] NOT NULL,
        PRIMARY KEY (item, field)
    )""",
)
LATEST_VERSION = len(MIGRATIONS)

LOCK: Final = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))"
"""Serializes processes migrating one schema's store tables at once; released at commit."""
CREATE_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS store_schema (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())")
GET_VERSION: Final = "SELECT coalesce(max(version), 0) FROM store_schema"
RECORD_VERSION: Final = "INSERT INTO store_schema (version) VALUES (%s)"


def migrate(schema: str | None, where: str) -> Op[int]:
    """Bring the store's tables up to `LATEST_VERSION` (run it in one transaction, not
    pipelined); the version found before.

    Args:
        schema: the schema to make if missing (a name `connection_kwargs` has checked), or
            None for the connection's `search_path`.

    Raises:
        SchemaVersionError: the tables were made by a newer tether (nothing is changed).
    """
    yield Query(LOCK, (f"tether.store:{schema or ''}",), "none")
    if schema is not None:
        yield Query(f"CREATE SCHEMA IF NOT EXISTS {schema}", None, "none")
    yield Query(CREATE_VERSION_TABLE, None, "none")
    (version,) = yield Query(GET_VERSION)
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"{where}: its store tables were written by a newer tether (version {version}; "
            f"this tether understands up to {LATEST_VERSION}); nothing was changed")
    for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        yield Query(statements, None, "none")
        yield Query(RECORD_VERSION, (number,), "none")
    return int(version)


__all__ = ["LATEST_VERSION", "migrate"]
