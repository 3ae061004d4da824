"""The Postgres store: many processes and machines on one database, with a run queue for
workers (`PostgresSaver`; needs the `postgres` extra)."""

from tether.checkpoint.postgres.store import AsyncPostgresSaver, PostgresSaver

__all__ = ["AsyncPostgresSaver", "PostgresSaver"]
