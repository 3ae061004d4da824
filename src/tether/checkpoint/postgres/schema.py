"""A tether schema in Postgres: made on first open, migrated in order, refused when newer.

Version N is the result of applying `_migrations.MIGRATIONS[:N]`; the table `tether_schema` records
each applied version. Migrations run in one transaction under an advisory lock, so processes
opening a new database at once migrate it exactly once, and a failure leaves nothing half-made.
"""

from __future__ import annotations

from psycopg import errors as pg_errors

from tether.checkpoint.postgres import _migrations
from tether.checkpoint.postgres.ops import Op, Query
from tether.errors import CorruptStoreError, SchemaVersionError

LATEST_VERSION = len(_migrations.MIGRATIONS)
"""The schema version this tether writes."""


def version() -> Op[int]:
    """The schema's tether version (0: no tether tables yet), read without writing."""
    (missing,) = yield Query(_migrations.GET_VERSION)
    if missing == 0:
        return 0
    (found,) = yield Query(_migrations.MAX_VERSION)
    return int(found)


def check(found: int, where: str) -> None:
    """Refuse a schema written by a newer tether.

    Raises:
        SchemaVersionError: `found` is above `LATEST_VERSION`.
    """
    if found > LATEST_VERSION:
        raise SchemaVersionError(
            f"{where}: was written by a newer tether (schema version {found}; this tether "
            f"understands up to {LATEST_VERSION}). Upgrade tether to use it; nothing was changed."
        )


def migrate(schema: str | None, where: str) -> Op[int]:
    """Bring the schema up to `LATEST_VERSION` (run it in one transaction); the new version.

    Raises:
        SchemaVersionError: the schema was written by a newer tether.
        CorruptStoreError: the schema holds tables of the same names that are not tether's.
    """
    key = schema if schema is not None else ""
    yield Query(_migrations.LOCK_MIGRATIONS, (key,), "none")
    if schema is not None:
        yield Query(_migrations.create_schema(schema), None, "none")
    found = yield from version()
    check(found, where)
    if found == LATEST_VERSION:
        return found
    yield Query(_migrations.CREATE_VERSION_TABLE, None, "none")
    for number, (description, statements) in enumerate(_migrations.MIGRATIONS, start=1):
        if number <= found:
            continue
        try:
            # One round trip per migration: without parameters, psycopg sends the statements
            # as one simple query, still inside the migration's transaction.
            yield Query(";\n".join(statements), None, "none")
        except pg_errors.DuplicateTable as exc:
            raise CorruptStoreError(
                f"{where}: has tables that tether did not make ({exc.diag.message_primary}); "
                "give tether a schema of its own (PostgresSaver(..., schema=...))"
            ) from exc
        yield Query(_migrations.RECORD_VERSION, (number, description), "none")
    return LATEST_VERSION


__all__ = ["LATEST_VERSION", "check", "migrate", "version"]
