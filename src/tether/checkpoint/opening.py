"""`from_conn_string(...)`: a block that opens a store and closes it after, as LangGraph's savers
are used (`with SqliteSaver.from_conn_string(path) as saver:`, or `async with`)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class Opening(Generic[S]):
    """A `with` / `async with` block around a store made by `make`.

    Cancellation:
        Leaving an `async with` block closes the store with its async `aclose()` when it has
        one (a pooled store), else `close()`; nothing is left open if the block is cancelled.
    """

    def __init__(self, make: Callable[[], S]) -> None:
        self._make = make
        self._store: S | None = None

    def __enter__(self) -> S:
        self._store = self._make()
        return self._store

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._store is not None:
            self._store.close()

    async def __aenter__(self) -> S:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        store = self._store
        if store is None:
            return
        aclose: Any = getattr(store, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            store.close()
