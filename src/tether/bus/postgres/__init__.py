"""The Postgres bus transport: a table and `LISTEN/NOTIFY` (needs the `postgres` extra)."""

from tether.bus.postgres.transport import PostgresTransport

__all__ = ["PostgresTransport"]
