"""`AsyncPostgresSaver` (LangGraph's `langgraph.checkpoint.postgres.aio` path): `PostgresSaver`
whose `setup()` is awaited."""

from __future__ import annotations

from tether.checkpoint.postgres.store import PostgresSaver


class AsyncPostgresSaver(PostgresSaver):
    """`PostgresSaver` for programs written against LangGraph's `AsyncPostgresSaver`:
    `async with AsyncPostgresSaver.from_conn_string(url) as saver`, `await saver.setup()`.

    `PostgresSaver` does real async I/O in its async methods already; this class differs only
    in an awaitable `setup()`. It opens a connection string, not a psycopg connection.
    """

    async def setup(self) -> None:  # type: ignore[override]
        """Make the tables if missing (done when the saver is opened).

        Cancellation:
            Nothing to cancel: it returns at once.
        """


__all__ = ["AsyncPostgresSaver"]
