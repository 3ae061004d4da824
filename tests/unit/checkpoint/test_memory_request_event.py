"""The in-memory store keeps a cancel request's audit event as its reason until the log is
read: the event read back is the one `request_cancel` used to make at once, and no cancel pays
for formatting it (`CancelReason.to_dict`) when nobody reads the log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tether.checkpoint.base import RunFinish
from tether.checkpoint.memory import InMemorySaver
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus


class _CountedReason(CancelReason):
    """A reason that counts how often it is formatted."""

    formatted = 0

    def to_dict(self) -> dict[str, Any]:
        type(self).formatted += 1
        return super().to_dict()


def _cancelled_run(store: InMemorySaver, reason: CancelReason) -> None:
    store.create_run(RunInfo("r1", None, RunStatus.PENDING))
    store.mark_running("r1", (RunEvent("start", datetime(2026, 1, 1, tzinfo=UTC)),))
    info, first = store.request_cancel("r1", reason)
    assert first and info.status is RunStatus.CANCELLING and info.reason is reason
    store.finish_run("r1", RunFinish(status=RunStatus.CANCELLED, reason=reason,
                                     events=(RunEvent("terminate", reason.requested_at),)))


def test_a_cancel_request_is_not_formatted_until_its_log_is_read() -> None:
    store = InMemorySaver()
    _CountedReason.formatted = 0
    reason = _CountedReason("user", "stop", "me", evidence={"why": [1, 2]})
    _cancelled_run(store, reason)
    assert _CountedReason.formatted == 0

    events = store.events("r1")
    assert [event.phase for event in events] == ["start", "request", "terminate"]
    request = events[1]
    assert request == RunEvent("request", reason.requested_at, None, {
        "kind": "user", "message": "stop", "requested_by": "me",
        "requested_at": reason.requested_at.isoformat(), "evidence": {"why": [1, 2]}})
    assert type(request) is RunEvent
    assert _CountedReason.formatted == 1


def test_a_cancel_request_read_twice_is_one_event() -> None:
    store = InMemorySaver()
    _CountedReason.formatted = 0
    _cancelled_run(store, _CountedReason("timeout", "late", "deadline"))
    first, second = store.events("r1"), store.events("r1")
    assert first == second
    assert first[1] is second[1]  # made once, kept
    assert _CountedReason.formatted == 1
    assert first is not second  # each read is the caller's own list
