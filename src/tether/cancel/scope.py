"""The cancel tree: one `CancelScope` per run and per task, cancellable from any thread.

A scope carries two things at once. The *state* (cancelled or not, why, until when) lives in
plain attributes that any thread may read, so that sync code sees a cancel the instant it is
requested. The *delivery* to async code is anyio's cancel scope, entered in the task that runs
the code; anyio re-raises `CancelledError` at every await while the scope stays cancelled, which
is what makes tether's cancellation level-triggered: a node that swallows it is cancelled again
at its next await.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio

from tether.types import CancelReason

# One lock for every tree: mutations are rare and tiny (attach, detach, cancel), and a single
# lock keeps a cancel from another thread from racing a child being attached on the loop.
_TREE_LOCK = threading.Lock()

CancelHook = Callable[[], Any]

# anyio's asyncio backend's own scope class, found once. `anyio.CancelScope()` asks sniffio which
# async library runs on every construction (three quarters of its cost); tether runs on asyncio
# only, so the answer never changes. None until the first scope is made inside a running loop.
_ASYNCIO_SCOPE: type[anyio.CancelScope] | None = None


def anyio_scope(*, shield: bool = False) -> anyio.CancelScope:
    """A new anyio cancel scope for the running asyncio loop, without asking which async library
    runs (call it inside a coroutine, as `anyio.CancelScope()`)."""
    global _ASYNCIO_SCOPE  # noqa: PLW0603 - a cache filled once
    cls = _ASYNCIO_SCOPE
    if cls is None:
        cls = _ASYNCIO_SCOPE = type(anyio.CancelScope())
    return cls(shield=shield)


class CancelScope:
    """A node of the cancel tree.

    A scope is cancelled by `cancel(reason)` from any thread, or by its own deadline when it is
    armed. Cancelling a scope cancels all of its descendants with the same reason.
    """

    __slots__ = (
        "_anyio",
        "_children",
        "_hooks",
        "_loop",
        "_on_deadline",
        "_parent",
        "_shield_grace",
        "_shields",
        "_timer",
        "_waiters",
        "cancelled_at",
        "deadline",
        "name",
        "own_deadline",
        "reason",
    )

    def __init__(
        self,
        parent: CancelScope | None = None,
        *,
        deadline: float | None = None,
        name: str | None = None,
        shield_grace: float | None = None,
    ) -> None:
        """Create a scope under `parent`.

        Args:
            parent: the enclosing scope; None for a run's root.
            deadline: absolute `time.monotonic()` value; a child can only shorten its parent's.
            name: what the scope stands for (a node name, a run id), for reports.
            shield_grace: how long a `shield()` inside this scope holds a cancel off.
        """
        # Invariant: `deadline` is the effective one (never later than any ancestor's);
        # `own_deadline` is set only when this scope's deadline is earlier than its parent's,
        # and only such a deadline is armed here (an inherited one is the ancestor's to enforce).
        self.deadline: float | None
        self.own_deadline: float | None
        self.name = name
        self.reason: CancelReason | None = None
        # `cancelled_at` is the monotonic time of the first cancel; None while not cancelled.
        self.cancelled_at: float | None = None
        self._parent = parent
        # Invariant: None (no child), the only child itself, or a set of two or more children
        # (or fewer, once some closed): most scopes have at most one child at a time (a run's
        # scope and its lone task's attempt), and a set for one would be its largest part.
        self._children: CancelScope | set[CancelScope] | None = None
        self._anyio: anyio.CancelScope | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._on_deadline: Callable[[CancelScope], Any] | None = None
        self._hooks: list[CancelHook] | None = None
        self._waiters: list[threading.Event] | None = None
        self._shields: list[anyio.CancelScope] | None = None
        self._shield_grace: float | None = shield_grace
        if parent is None:  # a run's root: nothing to inherit, nobody to tell
            self.deadline = self.own_deadline = deadline
            return
        inherited_deadline = parent.deadline
        if inherited_deadline is None or (deadline is not None
                                          and deadline < inherited_deadline):
            self.deadline = self.own_deadline = deadline
        else:
            self.deadline, self.own_deadline = inherited_deadline, None
        if shield_grace is None:
            self._shield_grace = parent._shield_grace
        with _TREE_LOCK:
            siblings = parent._children
            if siblings is None:
                parent._children = self
            elif isinstance(siblings, set):
                siblings.add(self)
            else:
                parent._children = {siblings, self}
            inherited = parent.reason
        if inherited is not None:
            self.reason = inherited
            self.cancelled_at = parent.cancelled_at

    # -- state, readable from any thread -------------------------------------------------

    @property
    def parent(self) -> CancelScope | None:
        """The enclosing scope."""
        return self._parent

    @property
    def cancel_called(self) -> bool:
        """True once `cancel()` reached this scope (directly or through an ancestor)."""
        return self.reason is not None

    def cancelled(self) -> bool:
        """True if this scope is cancelled or its deadline has passed."""
        if self.reason is not None:
            return True
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def effective_reason(self) -> CancelReason | None:
        """The reason a node should see: the cancel's, or a timeout once the deadline passed."""
        if self.reason is not None:
            return self.reason
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return CancelReason("timeout", "deadline passed", "deadline")
        return None

    # -- cancelling ----------------------------------------------------------------------

    def cancel(self, reason: CancelReason) -> bool:
        """Cancel this scope and every descendant; safe from any thread; idempotent.

        Returns:
            True for the call that cancelled the scope, False if it already was.
        """
        with _TREE_LOCK:
            if self.reason is not None:
                return False
            now = time.monotonic()
            children = self._children
            lone: CancelScope | None = None
            cancelled: list[CancelScope] | None = None
            if children is None or (isinstance(children, CancelScope)
                                    and children._children is None):
                # The usual tree: a run's scope and its lone task's attempt. No list, no stack
                # to walk; the same state and the same order of delivery as `_mark`'s.
                self.reason, self.cancelled_at = reason, now
                if children is not None and children.reason is None:
                    children.reason, children.cancelled_at = reason, now
                    lone = children
            else:
                cancelled = self._mark(reason, now)
        if cancelled is None:
            self._deliver()
            if lone is not None:
                lone._deliver()
            return True
        for scope in cancelled:
            scope._deliver()
        return True

    def cancel_children(self, reason: CancelReason) -> int:
        """Cancel the children not cancelled yet (and their descendants), not this scope: how
        a failed task stops its siblings. Safe from any thread; returns how many it cancelled."""
        with _TREE_LOCK:
            children = [c for c in _listed(self._children) if c.reason is None]
        return sum(1 for child in children if child.cancel(reason))

    def _mark(self, reason: CancelReason, now: float) -> list[CancelScope]:
        # Called under _TREE_LOCK: flip the state of the whole subtree first, so that no thread
        # can observe a cancelled parent with a child that still looks alive.
        out: list[CancelScope] = []
        stack = [self]
        while stack:
            scope = stack.pop()
            if scope.reason is not None and scope is not self:
                continue
            scope.reason = reason
            scope.cancelled_at = now
            out.append(scope)
            if scope._children is not None:
                stack.extend(_listed(scope._children))
        return out

    def _deliver(self) -> None:
        if self._waiters:
            for event in self._waiters:
                event.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._anyio is None and not self._shields:
            return
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            # In a callback, even on the scope's loop: anyio formats the repr of the task that
            # cancels into its message, a cost a crowd of cancels would pay one by one; in a
            # callback there is no such task. The state above is already flipped, and anyio
            # would wait for the next iteration for a task about to resume anyway. One
            # callback for every scope cancelled on this loop in this iteration (a crowd of
            # runs cancelled together): a handle each would be a loop turn's work each.
            due = _DUE.get(loop)
            if due is None:
                if _DUE:
                    _forget_closed_loops()
                due = _DUE[loop] = []
                loop.call_soon(_deliver_due, loop)
            due.append(self)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver_async)

    def _deliver_async(self) -> None:
        scope = self._anyio
        if scope is not None:
            scope.cancel("tether")
        if self._shields and self._shield_grace is not None:
            # A shield holds the cancel off, but only for its grace. The loop's clock, not
            # anyio.current_time(): this runs as a plain callback too (a deadline's timer, a
            # cancel from another thread), where anyio cannot tell which library is running.
            limit = asyncio.get_running_loop().time() + self._shield_grace
            for shield in self._shields:
                shield.deadline = min(shield.deadline, limit)

    # -- binding to the running task ----------------------------------------------------

    def __enter__(self) -> CancelScope:
        """Deliver this scope's cancel to the current asyncio task while the block runs."""
        scope = anyio_scope()
        scope.__enter__()
        self._anyio = scope
        self._loop = asyncio.get_running_loop()
        if self.reason is not None:
            scope.cancel("tether")
        return self

    def __exit__(self, *exc: Any) -> bool:
        scope, self._anyio = self._anyio, None
        assert scope is not None, "CancelScope exited without being entered"
        return bool(scope.__exit__(*exc))

    def arm(self, on_deadline: Callable[[CancelScope], Any] | None = None) -> None:
        """Start this scope's own deadline timer on the running loop (an inherited deadline is
        enforced by the ancestor that set it).

        Args:
            on_deadline: what to do when the deadline passes (the runs layer records the cancel
                durably first); by default the scope cancels itself with kind `timeout`.
        """
        if self.own_deadline is None or self._timer is not None or self.reason is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._on_deadline = on_deadline
        delay = self.own_deadline - time.monotonic()
        self._timer = loop.call_at(loop.time() + max(delay, 0.0), self._expire)

    def expire_due(self) -> None:
        """Fire, now, the deadline of this scope or an ancestor that has passed but whose timer
        has not run yet (a node saw the deadline first): the cancel then takes its usual path."""
        now = time.monotonic()
        scope: CancelScope | None = self
        chain = []
        while scope is not None:
            chain.append(scope)
            scope = scope._parent
        for ancestor in reversed(chain):  # the outermost deadline wins, as its timer would
            due = ancestor.own_deadline
            if due is not None and now >= due and ancestor.reason is None:
                if ancestor._timer is not None:
                    ancestor._timer.cancel()
                ancestor._expire()
                return

    def _expire(self) -> None:
        self._timer = None
        if self.reason is not None:
            return
        if self._on_deadline is not None:
            self._on_deadline(self)
        else:
            self.cancel(CancelReason("timeout", "deadline passed", "deadline"))

    def close(self) -> None:
        """Detach from the parent and stop the timer; the scope is done."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        parent = self._parent
        if parent is not None and parent._children is not None:
            with _TREE_LOCK:
                siblings = parent._children
                if siblings is self:
                    parent._children = None
                elif isinstance(siblings, set):
                    siblings.discard(self)

    # -- hooks and waiters ----------------------------------------------------------------

    def add_hook(self, hook: CancelHook) -> None:
        """Register a cleanup hook that fires once if this scope is cancelled while running."""
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)

    def take_hooks(self) -> list[CancelHook]:
        """Remove and return the registered hooks (so each fires at most once)."""
        hooks, self._hooks = self._hooks or [], None
        return hooks

    def add_waiter(self, event: threading.Event) -> None:
        """Set `event` when this scope is cancelled (for sync sleepers)."""
        with _TREE_LOCK:
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(event)
            already = self.reason is not None
        if already:
            event.set()

    def remove_waiter(self, event: threading.Event) -> None:
        """Undo `add_waiter`."""
        with _TREE_LOCK:
            if self._waiters and event in self._waiters:
                self._waiters.remove(event)

    def push_shield(self, shield: anyio.CancelScope) -> None:
        """Track an async shield entered under this scope, so a cancel can bound it."""
        if self._shields is None:
            self._shields = []
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._shields.append(shield)
        if self.reason is not None and self._shield_grace is not None and self.cancelled_at:
            remaining = self.cancelled_at + self._shield_grace - time.monotonic()
            # The loop's clock is anyio's on asyncio (without asking which library runs).
            now = asyncio.get_running_loop().time()
            shield.deadline = min(shield.deadline, now + max(remaining, 0.0))

    def pop_shield(self, shield: anyio.CancelScope) -> None:
        """Undo `push_shield`."""
        if self._shields and shield in self._shields:
            self._shields.remove(shield)

    @property
    def shield_grace(self) -> float | None:
        """How long a shield under this scope may hold a cancel off."""
        return self._shield_grace

    def __repr__(self) -> str:
        state = f"cancelled ({self.reason.kind})" if self.reason else "active"
        return f"<CancelScope {self.name or ''} {state}>"


_DUE: dict[asyncio.AbstractEventLoop, list[CancelScope]] = {}
"""Per loop, the scopes cancelled on it in this iteration, waiting for `_deliver_due` (only
the loop's own thread touches its entry)."""


def _forget_closed_loops() -> None:
    """Drop the entries of loops closed before their delivery ran (it never will): without
    this, a loop closed in the middle of an iteration would be held, with its scopes, for the
    life of the process."""
    for loop in [loop for loop in _DUE if loop.is_closed()]:
        del _DUE[loop]


def _deliver_due(loop: asyncio.AbstractEventLoop) -> None:
    """Deliver the cancels of the scopes cancelled on `loop` in the last iteration (a loop
    callback); a failure of one is reported as a failing callback would be, and the others
    are delivered all the same."""
    for scope in _DUE.pop(loop, ()):
        try:
            scope._deliver_async()
        except Exception as exc:  # noqa: BLE001 - reported by the loop, as a callback's
            loop.call_exception_handler({
                "message": "delivering a tether cancel failed", "exception": exc,
            })


def _listed(
    children: CancelScope | set[CancelScope] | None,
) -> tuple[CancelScope, ...] | set[CancelScope]:
    """A scope's children as a collection (see `CancelScope._children`)."""
    if children is None:
        return ()
    if isinstance(children, CancelScope):
        return (children,)
    return children
