"""The Postgres store: many processes and machines on one database, with a run queue for
workers (`PostgresSaver`; needs the `postgres` extra)."""

from tether.checkpoint.postgres.aio import AsyncPostgresSaver
from tether.checkpoint.postgres.store import PostgresSaver

__all__ = ["AsyncPostgresSaver", "PostgresSaver"]
