"""`AsyncSqliteSaver` (LangGraph's `langgraph.checkpoint.sqlite.aio` path): `SqliteSaver` whose
`setup()` is awaited."""

from __future__ import annotations

from tether.checkpoint.sqlite.store import SqliteSaver


class AsyncSqliteSaver(SqliteSaver):
    """`SqliteSaver` for programs written against LangGraph's `AsyncSqliteSaver`:
    `async with AsyncSqliteSaver.from_conn_string(path) as saver`, `await saver.setup()`.

    `SqliteSaver` serves async code as well (its async methods run its short transactions
    inline); this class differs only in an awaitable `setup()`. It opens a path (or a `sqlite3`
    connection's file), not an `aiosqlite` connection.
    """

    async def setup(self) -> None:  # type: ignore[override]
        """Make the tables if missing (done when the saver is opened).

        Cancellation:
            Nothing to cancel: it returns at once.
        """


__all__ = ["AsyncSqliteSaver"]
