"""The CLI's exit codes: one per way a run can end, so scripts can tell them apart."""

from __future__ import annotations

from enum import IntEnum

from tether.types import RunStatus


class ExitCode(IntEnum):
    """What `tether` returns to the shell."""

    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    CANCELLED = 3
    TIMEOUT = 4
    INTERRUPTED = 5
    SERVE_FAILED = 6
    """`tether serve` could not start: its address is in use or cannot be bound."""
    FORCED = 130
    """A second Ctrl-C (or SIGTERM) ended the process without waiting, or a Ctrl-C came
    before the run started: 128 + SIGINT."""


_BY_STATUS = {
    RunStatus.SUCCESS: ExitCode.SUCCESS,
    RunStatus.ERROR: ExitCode.ERROR,
    RunStatus.CANCELLED: ExitCode.CANCELLED,
    RunStatus.TIMEOUT: ExitCode.TIMEOUT,
    RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
}


def for_status(status: RunStatus) -> ExitCode:
    """The exit code of a run that ended (or paused) in `status`."""
    return _BY_STATUS.get(status, ExitCode.ERROR)


EPILOG = (
    "Exit codes: 0 success, 1 error, 2 usage (bad arguments, module:graph or JSON), "
    "3 cancelled, 4 timeout, 5 interrupted (paused for human input), "
    "6 the server could not start (address in use), "
    "130 forced exit by a second Ctrl-C (or a Ctrl-C before the run started)."
)

__all__ = ["EPILOG", "ExitCode", "for_status"]
