"""What every route reaches: the server's parts (`ServerState`), the caller (`Principal`), and
the threads the caller may see.

A thread belongs to the tenant of the key that created it (`metadata["tether_tenant"]`, set by
the server, never by the client); runs belong to their thread. Another tenant's thread or run
is answered 404, exactly as one that does not exist.

Thread ids are per tenant: a thread is stored under the id its client gave it, or, when another
tenant took that id first, under the id prefixed by the tenant (`store_ids`). So creating a
thread answers the same whether another tenant has one of that id or not, and reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from tether.checkpoint.base import CheckpointStore, ThreadRecord
from tether.checkpoint.ids import uuid7
from tether.server.auth import Principal
from tether.server.board import RunBoard
from tether.server.errors import not_found
from tether.server.graphs import Assistant, Assistants
from tether.server.guards import PRINCIPAL
from tether.server.launcher import RunLauncher
from tether.server.limits import ServerLimits, StreamSlots
from tether.server.wire import SCOPE, TENANT_KEY
from tether.store.base import BaseStore
from tether.types import RunInfo, RunStatus, StateSnapshot

BUSY = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING})


@dataclass(frozen=True, slots=True)
class ServerState:
    """The parts of a running server.

    Attributes:
        store: where runs, threads and checkpoints live.
        long_term_store: the server's long-term store (the `/store` routes; the graphs
            compiled without a store of their own).
    """

    assistants: Assistants
    store: CheckpointStore
    launcher: RunLauncher
    limits: ServerLimits
    slots: StreamSlots
    auth: bool
    board: RunBoard
    long_term_store: BaseStore

    async def aclose(self) -> None:
        """Stop serving: the pages' live boards end, and runs still going are cancelled
        (kind `shutdown`) or, when workers drive them, left to the workers. Idempotent.

        Cancellation:
            As `RunLauncher.aclose`.
        """
        self.board.close()
        await self.launcher.aclose()

    # -- threads ----------------------------------------------------------------------------

    async def thread(self, caller: Principal, thread_id: str) -> ThreadRecord:
        """The caller's thread (its `thread_id` is where it is stored, see `store_ids`).

        Raises:
            HTTPException: 404 when it does not exist or belongs to another tenant.

        Cancellation:
            Safe: it only reads (`CheckpointStore.aget_thread`).
        """
        for stored in store_ids(caller, thread_id):
            record = await self.store.aget_thread(stored)
            if record is not None and visible(record, caller):
                return record
        raise not_found("thread", thread_id)

    async def create_thread(self, caller: Principal, thread_id: str | None,
                            metadata: dict[str, Any] | None, *,
                            if_exists: str) -> tuple[ThreadRecord, bool]:
        """Create a thread for the caller (or return it, with `if_exists="do_nothing"`); a
        thread of that id of another tenant's is no obstacle (see `store_ids`). The record,
        and True when it was created now (then it has no runs and no checkpoints yet).

        Raises:
            HTTPException: 409 if the caller has a thread of that id (and `if_exists="raise"`).

        Cancellation:
            As `CheckpointStore.aput_thread`: the write is whole or not made.
        """
        if thread_id is None:
            fresh = uuid7()
            made = await self.store.aput_thread(fresh, stamped(metadata, caller))
            return made, True
        slots = [(stored, await self.store.aget_thread(stored))
                 for stored in store_ids(caller, thread_id)]
        for _stored, existing in slots:
            if existing is not None and visible(existing, caller):
                if if_exists == "do_nothing":
                    return existing, False
                raise HTTPException(409, f"thread {thread_id!r} already exists")
        free = next((stored for stored, existing in slots if existing is None), None)
        if free is None:
            raise HTTPException(409, f"thread {thread_id!r} cannot be created")
        made = await self.store.aput_thread(free, stamped(metadata, caller))
        return made, True

    async def run(self, caller: Principal, thread_id: str, run_id: str) -> RunInfo:
        """The caller's run of the caller's thread.

        Raises:
            HTTPException: 404 for no such run on that thread, or another tenant's.

        Cancellation:
            Safe: it only reads.
        """
        info = await self.store.aget_run(run_id)
        if caller.tenant is None and info is not None and info.thread_id == thread_id \
                and SCOPE not in thread_id:
            # Without tenants the run alone answers: its thread exists (it holds this run)
            # and every thread is the caller's.
            return info
        record = await self.thread(caller, thread_id)
        if info is None or info.thread_id != record.thread_id or not run_visible(info, caller):
            raise not_found("run", run_id)
        return info

    async def run_to_cancel(self, caller: Principal, thread_id: str, run_id: str) -> RunInfo:
        """`run`, for a cancel: without tenants, a run this process drives is answered by the
        run itself, with no store read (`LocalLauncher.live`): a cancel needs only its thread,
        which never changes, and whether it has ended.

        Raises:
            HTTPException: 404, as `run`.

        Cancellation:
            Safe: it only reads.
        """
        info = self.launcher.live(run_id) if caller.tenant is None else None
        if info is not None and info.thread_id == thread_id and SCOPE not in thread_id:
            return info
        return await self.run(caller, thread_id, run_id)

    def graph_of(self, record: ThreadRecord) -> Assistant | None:
        """The assistant whose runs write this thread (the only one when there is one)."""
        graph_id = record.metadata.get("graph_id")
        if isinstance(graph_id, str) and (found := self.assistants.get(graph_id)) is not None:
            return found
        served = self.assistants.all()
        return served[0] if len(served) == 1 else None

    async def snapshot(self, record: ThreadRecord, checkpoint_id: str | None = None,
                       ns: str = "") -> StateSnapshot | None:
        """The thread's state (latest, or at `checkpoint_id`); None with no checkpoint.

        Cancellation:
            Safe: it only reads.
        """
        assistant = self.graph_of(record)
        config = {"configurable": {"thread_id": record.thread_id, "checkpoint_ns": ns,
                                   "checkpoint_id": checkpoint_id}}
        if assistant is not None:
            state = await assistant.graph.aget_state(config)
            return state if state.created_at is not None else None
        stored = await self.store.aget_checkpoint(record.thread_id, ns, checkpoint_id)
        if stored is None:
            return None
        values = {k: v for k, v in stored.values.items() if not k.startswith(("branch:", "__"))}
        return StateSnapshot(values, stored.next, config, dict(stored.metadata),
                             stored.created_at.isoformat(), None, ())

    async def thread_status(self, thread_id: str) -> tuple[str, str | None]:
        """`busy`, `interrupted`, `error` or `idle`, from the thread's latest runs; with
        `error`, the latest run's error (`"Type: message"`), else None.

        Cancellation:
            Safe: it only reads.
        """
        runs = await self.store.alist_runs(thread_id=thread_id, limit=20)
        if any(r.status in BUSY for r in runs):
            return "busy", None
        if runs and runs[0].status is RunStatus.INTERRUPTED:
            return "interrupted", None
        if runs and runs[0].status is RunStatus.ERROR:
            return "error", runs[0].error
        return "idle", None


def store_ids(caller: Principal, thread_id: str) -> tuple[str, ...]:
    """Where the caller's thread `thread_id` may be stored, in the order looked at: under that
    id, or, when another tenant had taken it, under `<tenant>/<id>` (a client's thread id holds
    no `/`: it is one segment of a path). None for an id a client cannot have."""
    if SCOPE in thread_id:
        return ()
    if caller.tenant is None:
        return (thread_id,)
    return (thread_id, f"{caller.tenant}{SCOPE}{thread_id}")


def visible(record: ThreadRecord, caller: Principal) -> bool:
    """True if `caller` may see the thread (always, on a server without auth)."""
    return caller.tenant is None or record.metadata.get(TENANT_KEY) == caller.tenant


def run_visible(info: RunInfo, caller: Principal) -> bool:
    """False for a run whose own record names another tenant (its thread decides otherwise)."""
    tenant = info.metadata.get(TENANT_KEY)
    return caller.tenant is None or tenant is None or tenant == caller.tenant


def stamped(metadata: dict[str, Any] | None, caller: Principal) -> dict[str, Any]:
    """Client metadata with the tenant set by the server (a client's own value is dropped)."""
    clean = {k: v for k, v in (metadata or {}).items() if k != TENANT_KEY}
    if caller.tenant is not None:
        clean[TENANT_KEY] = caller.tenant
    return clean


async def server_of(request: Request) -> ServerState:
    """The running server (a FastAPI dependency; async so that it runs inline, not in a
    worker thread).

    Cancellation:
        Nothing to cancel: it returns at once.
    """
    state: ServerState = request.app.state.tether
    return state


async def caller_of(request: Request) -> Principal:
    """The authenticated caller (a FastAPI dependency, async to run inline).

    Cancellation:
        Nothing to cancel: it returns at once.

    Raises:
        HTTPException: 401 when the gate let an unauthenticated request through to a route
            that needs a caller (a public path).
    """
    return _principal(request)


def parts(request: Request) -> tuple[ServerState, Principal]:
    """The server and the caller of a request, read from the request itself.

    The hottest routes (create a run, read it, cancel it, join or stream it, create a thread)
    take these instead of the `Server` and `Caller` dependencies: both are settled before a
    route runs (the app's state; the caller the gate left in the scope), so resolving them as
    FastAPI dependencies is work on every request that never changes the answer.

    Raises:
        HTTPException: 401, as `caller_of`.
    """
    state: ServerState = request.app.state.tether
    return state, _principal(request)


def _principal(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise HTTPException(401, "missing or invalid API key")
    return principal


Server = Annotated[ServerState, Depends(server_of)]
Caller = Annotated[Principal, Depends(caller_of)]

__all__ = ["TENANT_KEY", "Caller", "Server", "ServerState", "caller_of", "parts", "server_of",
           "stamped", "store_ids", "visible"]
