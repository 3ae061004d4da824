"""Running cleanup hooks (`on_cancel`) after their tasks stopped: shielded, bounded, each once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import anyio

from tether.cancel.context import is_async_hook
from tether.cancel.scope import CancelHook
from tether.engine.to_thread import ThreadPool


async def run_hooks(hooks: Sequence[tuple[str, CancelHook]], grace: float,
                    pool: ThreadPool) -> list[dict[str, Any]]:
    """Run each (task name, hook) once, within `grace` seconds for all of them together.

    Cancellation:
        Shielded: a second cancel of the caller does not interrupt cleanup; the grace bounds it.
        A hook still running when the grace ends is abandoned and reported as `timeout`.

    Returns:
        One report per hook: node, hook name, outcome (`ok`, `error`, `timeout`), detail.
    """
    reports: list[dict[str, Any]] = []
    deadline = time.monotonic() + grace
    for node, hook in hooks:
        name = getattr(hook, "__qualname__", repr(hook))
        left = deadline - time.monotonic()
        if left <= 0:
            reports.append({"node": node, "hook": name, "outcome": "timeout",
                            "detail": "no time left in the cleanup grace"})
            continue
        outcome, detail = await _run_one(hook, left, pool)
        reports.append({"node": node, "hook": name, "outcome": outcome, "detail": detail})
    return reports


async def _run_one(hook: CancelHook, budget: float,
                   pool: ThreadPool) -> tuple[str, str | None]:
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(budget) as guard:
            try:
                if is_async_hook(hook):
                    await hook()
                else:
                    await pool.run(hook, scope=None, grace=0.0)
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                return "error", f"{type(exc).__name__}: {exc}"
        if guard.cancelled_caught:
            return "timeout", f"still running after {budget:.3f}s"
    return "ok", None
