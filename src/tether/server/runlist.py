"""The page's run list: which of the caller's runs match a filter, a page at a time.

The store answers by thread and by one status; the rest (graph, reason kind, time, text) is
matched here, over the store's runs newest first, so every run can be reached by paging.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from datetime import UTC, datetime

from tether.server.auth import Principal
from tether.server.context import ServerState, visible
from tether.server.errors import invalid
from tether.server.wire import TENANT_KEY
from tether.types import CancelKind, RunInfo, RunStatus

KINDS: tuple[str, ...] = typing.get_args(CancelKind)
STATUSES: tuple[str, ...] = tuple(s.value for s in RunStatus)
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What the runs shown must match (every field that is set).

    Attributes:
        text: found, ignoring case, in the run id, thread id, metadata, reason or error.
    """

    statuses: frozenset[str] = frozenset()
    graph: str | None = None
    thread_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    @classmethod
    def parse(cls, *, status: str | None = None, graph: str | None = None,
              thread: str | None = None, kind: str | None = None, since: str | None = None,
              until: str | None = None, q: str | None = None) -> RunFilter:
        """A filter from the query string (`status` may list several, comma-separated).

        Raises:
            HTTPException: 422 naming an unknown status or kind, or a time that is not ISO 8601.
        """
        statuses = frozenset(s.strip() for s in (status or "").split(",") if s.strip())
        unknown = sorted(statuses - set(STATUSES))
        if unknown:
            raise invalid(f"unknown status {unknown[0]!r}; use one of {', '.join(STATUSES)}",
                          "query", "status")
        if kind and kind not in KINDS:
            raise invalid(f"unknown reason kind {kind!r}; use one of {', '.join(KINDS)}",
                          "query", "kind")
        return cls(statuses, graph or None, thread or None, kind or None,
                   _when("since", since), _when("until", until),
                   (q or "").strip().lower() or None)

    def matches(self, info: RunInfo) -> bool:
        """Whether the run passes every condition of the filter."""
        if self.statuses and info.status.value not in self.statuses:
            return False
        if self.graph is not None and info.metadata.get("graph") != self.graph:
            return False
        if self.kind is not None and (info.reason is None or info.reason.kind != self.kind):
            return False
        if self.since is not None and info.created_at < self.since:
            return False
        if self.until is not None and info.created_at > self.until:
            return False
        return self.text is None or self.text in _haystack(info)


def _when(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name} {value!r} is not an ISO 8601 time", "query", name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _haystack(info: RunInfo) -> str:
    reason = info.reason.message if info.reason is not None else ""
    metadata = json.dumps(info.metadata, default=str, ensure_ascii=False)
    return " ".join((info.run_id, info.thread_id or "", metadata, reason,
                     info.error or "")).lower()


class Visibility:
    """Which runs a caller may see, remembering the threads it looked up."""

    def __init__(self, server: ServerState, caller: Principal) -> None:
        self._server = server
        self._caller = caller
        self._threads: dict[str, bool] = {}

    async def __call__(self, info: RunInfo) -> bool:
        """True if the caller may see the run (its own record names the tenant, or its
        thread does).

        Cancellation:
            Safe: it only reads (a thread looked up is remembered).
        """
        tenant = self._caller.tenant
        if tenant is None:
            return True
        own = info.metadata.get(TENANT_KEY)
        if own is not None:
            return bool(own == tenant)
        thread_id = info.thread_id or ""
        if thread_id not in self._threads:
            record = await self._server.store.aget_thread(thread_id) if thread_id else None
            self._threads[thread_id] = record is not None and visible(record, self._caller)
        return self._threads[thread_id]


async def page(server: ServerState, caller: Principal, wanted: RunFilter, *, offset: int,
               limit: int) -> tuple[list[RunInfo], int]:
    """One page of the caller's runs that match, newest first, and how many match in all.

    Raises:
        HTTPException: 422 for a limit outside 1..`MAX_PAGE` or a negative offset.

    Cancellation:
        Safe: it only reads.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise invalid(f"limit must be between 1 and {MAX_PAGE}", "query", "limit")
    if offset < 0:
        raise invalid("offset must not be negative", "query", "offset")
    status = next(iter(wanted.statuses)) if len(wanted.statuses) == 1 else None
    mine = Visibility(server, caller)
    found = [info for info in await server.store.alist_runs(thread_id=wanted.thread_id,
                                                            status=status)
             if wanted.matches(info) and await mine(info)]
    return found[offset:offset + limit], len(found)


__all__ = ["KINDS", "MAX_PAGE", "STATUSES", "RunFilter", "Visibility", "page"]
