"""`CancelScope` on its own, without a run: the tree, the state any thread reads, the delivery to
async code (level-triggered), deadlines, hooks, waiters and shields."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import weakref

import anyio
import pytest

from tether.cancel.scope import CancelScope, anyio_scope
from tether.types import CancelReason

pytestmark = pytest.mark.anyio

STOP = CancelReason("user", "stop")
OTHER = CancelReason("policy", "other")


# -- the tree, read from any thread ----------------------------------------------------------


def test_cancel_reaches_every_descendant_with_the_same_reason_once() -> None:
    root = CancelScope(name="run")
    child = CancelScope(root, name="task")
    grandchild = CancelScope(child, name="subgraph task")
    assert not root.cancel_called and not grandchild.cancelled()
    assert root.cancel(STOP) is True
    assert root.cancel(OTHER) is False
    for scope in (root, child, grandchild):
        assert scope.reason is STOP and scope.cancel_called and scope.cancelled()
        assert scope.cancelled_at == root.cancelled_at


def test_a_lone_child_cancelled_first_keeps_its_reason_when_its_parent_is_cancelled() -> None:
    root = CancelScope(name="run")
    child = CancelScope(root, name="task")
    child.cancel(OTHER)
    first_at = child.cancelled_at
    assert root.cancel(STOP) is True
    assert root.reason is STOP and child.reason is OTHER and child.cancelled_at == first_at


def test_cancelling_a_child_leaves_its_parent_and_siblings_alone() -> None:
    root = CancelScope()
    first, second = CancelScope(root), CancelScope(root)
    first.cancel(STOP)
    assert first.cancel_called
    assert not root.cancel_called and not second.cancel_called


def test_a_child_made_under_a_cancelled_parent_starts_cancelled() -> None:
    root = CancelScope()
    root.cancel(STOP)
    late = CancelScope(root)
    assert late.reason is STOP and late.cancelled_at == root.cancelled_at


def test_cancel_children_stops_the_live_children_only() -> None:
    root = CancelScope()
    done, live, grandchild_parent = CancelScope(root), CancelScope(root), CancelScope(root)
    grandchild = CancelScope(grandchild_parent)
    done.cancel(STOP)
    assert root.cancel_children(OTHER) == 2
    assert not root.cancel_called
    assert done.reason is STOP
    assert live.reason is OTHER and grandchild.reason is OTHER


def test_a_closed_child_no_longer_hears_its_parent() -> None:
    root = CancelScope()
    child = CancelScope(root)
    child.close()
    root.cancel(STOP)
    assert not child.cancel_called


def test_a_scope_with_one_child_holds_no_set_of_children() -> None:
    # A run's scope and its lone task's attempt: the usual shape, a thousand times over.
    root = CancelScope()
    child = CancelScope(root)
    assert not any(isinstance(o, set) for o in gc.get_referents(root))
    assert child in gc.get_referents(root)
    child.close()
    assert child not in gc.get_referents(root)


@pytest.mark.parametrize("closed", [(), (0,), (1,), (0, 1), (0, 2), (0, 1, 2)])
def test_a_cancel_reaches_the_children_still_open_however_many_came_and_went(
        closed: tuple[int, ...]) -> None:
    root = CancelScope()
    first = CancelScope(root)
    second = CancelScope(root)
    for index in closed:
        if index < 2:
            (first, second)[index].close()
    third = CancelScope(root)
    if 2 in closed:
        third.close()
    root.cancel(STOP)
    for index, child in enumerate((first, second, third)):
        assert child.cancel_called is (index not in closed)


def test_cancel_children_of_a_scope_with_one_child_cancels_it() -> None:
    root = CancelScope()
    child = CancelScope(root)
    grandchild = CancelScope(child)
    assert root.cancel_children(OTHER) == 1
    assert not root.cancel_called
    assert child.reason is OTHER and grandchild.reason is OTHER


def test_a_cancel_from_another_thread_is_seen_at_once() -> None:
    scope = CancelScope()
    thread = threading.Thread(target=scope.cancel, args=(STOP,))
    thread.start()
    thread.join()
    assert scope.cancelled() and scope.reason is STOP


# -- deadlines ---------------------------------------------------------------------------------


def test_a_child_can_only_shorten_its_parents_deadline() -> None:
    now = time.monotonic()
    root = CancelScope(deadline=now + 10)
    later = CancelScope(root, deadline=now + 20)
    sooner = CancelScope(root, deadline=now + 5)
    assert later.deadline == now + 10 and later.own_deadline is None
    assert sooner.deadline == now + 5 and sooner.own_deadline == now + 5
    assert CancelScope(root).deadline == now + 10


def test_a_passed_deadline_reads_as_cancelled_with_a_timeout_reason() -> None:
    scope = CancelScope(deadline=time.monotonic() - 1)
    assert scope.cancelled() and not scope.cancel_called
    reason = scope.effective_reason()
    assert reason is not None and reason.kind == "timeout"


async def test_an_armed_deadline_cancels_the_scope_with_kind_timeout() -> None:
    scope = CancelScope(deadline=time.monotonic() + 0.01)
    scope.arm()
    with anyio.fail_after(5):
        while not scope.cancel_called:
            await asyncio.sleep(0.005)
    assert scope.reason is not None and scope.reason.kind == "timeout"


async def test_an_armed_deadline_hands_its_expiry_to_the_callback() -> None:
    seen: list[CancelScope] = []
    scope = CancelScope(deadline=time.monotonic() + 0.01)
    scope.arm(seen.append)
    with anyio.fail_after(5):
        while not seen:
            await asyncio.sleep(0.005)
    assert seen == [scope] and not scope.cancel_called


async def test_expire_due_fires_the_outermost_passed_deadline_now() -> None:
    fired: list[str] = []
    root = CancelScope(deadline=time.monotonic() + 0.001, name="run")
    child = CancelScope(root, deadline=time.monotonic() + 0.0005, name="task")
    root.arm(lambda s: fired.append(str(s.name)))
    child.arm(lambda s: fired.append(str(s.name)))
    time.sleep(0.005)  # both passed; neither timer has run (the loop is blocked)
    child.expire_due()
    assert fired == ["run"]


# -- delivery to async code --------------------------------------------------------------------


async def test_an_entered_scope_delivers_its_cancel_at_the_next_await() -> None:
    scope = CancelScope()
    asyncio.get_running_loop().call_later(0.01, scope.cancel, STOP)
    with anyio.fail_after(5):
        with scope:
            await asyncio.sleep(10)
    assert scope.reason is STOP


async def test_the_cancel_is_level_triggered_a_swallowed_one_comes_back() -> None:
    scope = CancelScope()
    caught = 0
    with anyio.fail_after(5), scope:
        scope.cancel(STOP)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            caught += 1  # swallowed: the next await is cancelled again
        await asyncio.sleep(10)
    assert caught == 1


async def test_a_cancel_from_another_thread_reaches_the_awaiting_task() -> None:
    scope = CancelScope()
    with anyio.fail_after(5), scope:
        threading.Timer(0.01, scope.cancel, (STOP,)).start()
        await asyncio.sleep(10)
    assert scope.reason is STOP


# -- hooks, waiters, shields -------------------------------------------------------------------


def test_hooks_are_taken_once() -> None:
    scope = CancelScope()
    scope.add_hook(print)
    assert scope.take_hooks() == [print]
    assert scope.take_hooks() == []


def test_a_waiter_is_set_by_the_cancel_or_at_once_when_cancelled_already() -> None:
    scope = CancelScope()
    event = threading.Event()
    scope.add_waiter(event)
    scope.cancel(STOP)
    assert event.is_set()
    late = threading.Event()
    scope.add_waiter(late)
    assert late.is_set()
    scope.remove_waiter(late)


async def test_a_shield_holds_the_cancel_off_for_the_grace_only() -> None:
    scope = CancelScope(shield_grace=0.05)
    finished = False
    with anyio.fail_after(5), scope:
        shield = anyio.CancelScope(shield=True)
        with shield:
            scope.push_shield(shield)
            scope.cancel(STOP)
            await asyncio.sleep(0.01)  # within the grace: not interrupted
            finished = True
            await asyncio.sleep(10)  # past the grace: the shield gives way
        scope.pop_shield(shield)
    assert finished and shield.cancel_called


# -- the anyio scope behind each binding -------------------------------------------------------


async def test_binding_a_scope_does_not_ask_anyio_which_async_library_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `anyio.CancelScope()` detects the running library on each construction; a scope per task
    # is made from the asyncio backend's class, found once.
    with CancelScope():
        pass

    def detect(**_kwargs: object) -> None:
        raise AssertionError("anyio.CancelScope() built again")

    monkeypatch.setattr(anyio, "CancelScope", detect)
    root = CancelScope(name="run")
    with root:
        with anyio_scope(shield=True) as guard:
            assert guard.shield
        task = CancelScope(root, name="task")
        with task:
            root.cancel(STOP)
            with pytest.raises(asyncio.CancelledError):
                await asyncio.sleep(1)
    assert task.reason is STOP


# -- delivery of many cancels at once ------------------------------------------------------------


async def _parked_in(scope: CancelScope, entered: asyncio.Event, count: list[int]) -> None:
    with scope:
        count[0] += 1
        entered.set()
        await asyncio.sleep(10)


async def _parked(n: int) -> tuple[list[CancelScope], list[asyncio.Task[None]]]:
    """`n` scopes, each entered by a task of its own that then sleeps inside it."""
    scopes = [CancelScope(name=f"run{i}") for i in range(n)]
    entered, count = asyncio.Event(), [0]
    tasks = [asyncio.create_task(_parked_in(scope, entered, count)) for scope in scopes]
    with anyio.fail_after(5):
        while count[0] < n:
            entered.clear()
            await entered.wait()
    return scopes, tasks


async def test_scopes_cancelled_in_one_iteration_are_delivered_by_one_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A crowd of runs cancelled together: one loop callback delivers every cancel, not one
    # handle per scope.
    scopes, tasks = await _parked(3)
    loop = asyncio.get_running_loop()
    scheduled: list[object] = []
    original = loop.call_soon

    def counting(callback: object, *args: object, **kwargs: object) -> object:
        scheduled.append(callback)
        return original(callback, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_soon", counting)
    for scope in scopes:
        scope.cancel(STOP)
    assert len(scheduled) == 1
    monkeypatch.undo()
    with anyio.fail_after(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results == [None, None, None]  # each scope caught its own cancel
    assert all(task.done() and not task.cancelled() for task in tasks)


async def test_a_delivery_that_fails_is_reported_and_the_others_are_delivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from anyio._backends import _asyncio as asyncio_backend

    scopes, tasks = await _parked(2)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    original = asyncio_backend.CancelScope.cancel
    failed: list[object] = []

    def cancel_once_failing(self: object, reason: str | None = None) -> None:
        if not failed:
            failed.append(self)
            raise RuntimeError("delivery failed")
        original(self, reason)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio_backend.CancelScope, "cancel", cancel_once_failing)
    for scope in scopes:
        scope.cancel(STOP)
    await asyncio.sleep(0)  # the delivery callback runs
    monkeypatch.undo()
    try:
        assert len(reported) == 1
        assert isinstance(reported[0]["exception"], RuntimeError)
        with anyio.fail_after(5):
            done, _ = await asyncio.wait(tasks, timeout=1)
        assert len(done) == 1  # the second scope's task was cancelled all the same
    finally:
        loop.set_exception_handler(None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_loop_closed_before_its_cancels_were_delivered_is_not_held() -> None:
    # The loop stops in the iteration that cancelled the scope: the delivery callback never
    # runs, and nothing may keep the closed loop (and its scopes) alive.
    async def cancel_as_the_loop_stops() -> None:
        scope = CancelScope(name="orphan")
        with scope:
            scope.cancel(STOP)
            asyncio.get_running_loop().stop()

    closed = asyncio.new_event_loop()
    with contextlib.suppress(RuntimeError):  # stopped before the coroutine finished
        closed.run_until_complete(cancel_as_the_loop_stops())
    closed.close()
    gone = weakref.ref(closed)
    del closed

    async def another_cancel() -> None:
        with CancelScope(name="later") as scope:
            scope.cancel(STOP)
            await asyncio.sleep(0)

    asyncio.run(another_cancel())
    gc.collect()
    assert gone() is None
