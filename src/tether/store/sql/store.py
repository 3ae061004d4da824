"""`SqlStore`: what the SQLite and Postgres stores share — a batch run as the steps of
`ops.batch`, by a driver that is sync (`_run`) or async (`_arun`)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tether.checkpoint.query import Op, Query
from tether.store.base.items import Item
from tether.store.base.ops import GetOp, Result, validate_op_namespace
from tether.store.base.settings import IndexConfig, TTLConfig
from tether.store.batched import BatchedStore
from tether.store.clock import Clock, now_micros
from tether.store.embedding import NOTHING, Embedded
from tether.store.plan import Plan
from tether.store.sql import ops
from tether.store.sql.dialect import Dialect
from tether.store.sql.statements import statements_for
from tether.store.values import loads

T = TypeVar("T")


class SqlStore(BatchedStore):
    """A store whose items live in SQL tables (`sql/statements.py`).

    Args:
        dialect: the database's spelling.
        deserializer: turns a stored JSON text into a value (default `json.loads`).
        index, ttl, clock: as for `BatchedStore`.
    """

    def __init__(self, dialect: Dialect, *, index: IndexConfig | None, ttl: TTLConfig | None,
                 deserializer: ops.Loads | None, clock: Clock | None) -> None:
        super().__init__(index=index, ttl=ttl, clock=clock)
        self._statements = statements_for(dialect)
        self._loads: ops.Loads = deserializer or loads

    @abstractmethod
    def _run(self, make: Callable[[], Op[T]], transaction: bool) -> T:
        """Run the operation `make()` makes (in a write transaction if `transaction`, else in
        a read snapshot)."""

    @abstractmethod
    async def _arun(self, make: Callable[[], Op[T]], transaction: bool) -> T:
        """As `_run`, for async callers, without holding their event loop (a backend may make
        the operation again, to run it elsewhere from its start).

        Cancellation:
            The step is committed whole or not at all.
        """

    def _fetch(self, query: Query) -> Any:
        """The first row of one read-only statement (a backend may run it more directly than
        as an operation)."""
        return self._run(lambda: ops.fetch(query), False)

    async def _afetch(self, query: Query) -> Any:
        """As `_fetch`, for async callers.

        Cancellation:
            As `_arun`: a read, safe to retry.
        """
        return await self._arun(lambda: ops.fetch(query), False)

    def _lone_get(self, op: GetOp) -> Item | None:
        # `batch([op])` without the plan and the steps around its one statement: its check,
        # its statement, then the refresh it may owe, in a transaction of its own.
        b = self._batch(op)
        reading = ops.Reading([None])
        item = ops.got(b, op, self._fetch(ops.get_query(b, op)), reading)
        if reading.refresh:
            self._run(lambda: ops.write(b, (), reading.refresh), True)
        return item

    async def _alone_get(self, op: GetOp) -> Item | None:
        """As `_lone_get`.

        Cancellation:
            As `abatch`: the read is safe to retry; a refresh is committed whole or not at all.
        """
        b = self._batch(op)
        reading = ops.Reading([None])
        item = ops.got(b, op, await self._afetch(ops.get_query(b, op)), reading)
        if reading.refresh:
            await self._arun(lambda: ops.write(b, (), reading.refresh), True)
        return item

    def _batch(self, op: GetOp) -> ops.Batch:
        validate_op_namespace(op)  # what `Plan.of` checks of a get
        return ops.Batch(self._statements, self._loads, NOTHING, now_micros(self._clock))

    def _execute(self, plan: Plan, embedded: Embedded, now: int) -> list[Result]:
        steps = ops.batch(ops.Batch(self._statements, self._loads, embedded, now), plan)
        return drive(steps, self._run)

    async def _aexecute(self, plan: Plan, embedded: Embedded, now: int) -> list[Result]:
        steps = ops.batch(ops.Batch(self._statements, self._loads, embedded, now), plan)
        return await adrive(steps, self._arun)

    def _sweep(self, now: int) -> int:
        return self._run(lambda: ops.sweep(self._statements, now), True)


def drive(steps: ops.Steps, run: Callable[[Callable[[], Op[Any]], bool], Any]
          ) -> list[Result]:
    """Run each step of a batch with `run`, in order; the batch's results."""
    try:
        step = next(steps)
        while True:
            step = steps.send(run(*step))
    except StopIteration as stop:
        results: list[Result] = stop.value
        return results


async def adrive(steps: ops.Steps,
                 arun: Callable[[Callable[[], Op[Any]], bool], Awaitable[Any]]) -> list[Result]:
    """As `drive`, awaiting each step.

    Cancellation:
        A step cancelled midway is rolled back by the driver's transaction; the steps before
        it stay committed (only a read-only batch has two steps: its reads, then its ttl
        refreshes).
    """
    try:
        step = next(steps)
        while True:
            step = steps.send(await arun(*step))
    except StopIteration as stop:
        results: list[Result] = stop.value
        return results


__all__ = ["SqlStore", "adrive", "drive"]
