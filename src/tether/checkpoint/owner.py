"""Which process owns a run: an identity string written on the run, and the test of whether the
process it names is still alive.

An owner is `"{hostname}:{pid}:{token}"`. On Linux the token is the boot id and the process's
start time, so a pid reused by a later process (or by the same pid 1 in a restarted container)
does not pass for the owner. Elsewhere the token is empty and only the pid is checked.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

_PROC = Path("/proc")
_STAT_STATE, _STAT_STARTTIME = 0, 19
"""Indexes of `state` and `starttime` among the fields of /proc/<pid>/stat after `(comm)`."""
_current: list[Any] = [-1, ""]
"""[pid, identity], cached for the process that computed it."""


def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    # The command name may hold spaces and parentheses: split after the last ')'.
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def token_of(pid: int) -> str:
    """The start-of-life token of process `pid` ("" when the platform does not tell)."""
    fields = _stat(pid)
    if fields is None:
        return ""
    boot = _boot_id()
    return f"{boot}.{fields[_STAT_STARTTIME]}" if boot else fields[_STAT_STARTTIME]


def current() -> str:
    """This process's owner identity; a forked child gets its own."""
    pid = os.getpid()
    if _current[0] != pid:
        _current[:] = [pid, f"{socket.gethostname()}:{pid}:{token_of(pid)}"]
    return str(_current[1])


def parse(owner: str) -> tuple[str, int, str] | None:
    """(host, pid, token) of an owner string, or None if it is not one tether wrote."""
    host, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    if not host or not pid_text.isdigit():
        return None
    return host, int(pid_text), token


def pid_of(owner: str) -> int | None:
    """The pid an owner names, if any."""
    parsed = parse(owner)
    return parsed[1] if parsed is not None else None


def is_alive(owner: str) -> bool:
    """False only when `owner` certainly names a process of this host that has died.

    A process of another host, or an owner string of unknown shape, counts as alive: this
    check cannot see it, and a run must never be declared dead by mistake.
    """
    parsed = parse(owner)
    if parsed is None:
        return True
    host, pid, token = parsed
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _stat(pid)
    if fields is not None and fields[_STAT_STATE] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not token or token_of(pid) in ("", token)


__all__ = ["current", "is_alive", "parse", "pid_of", "token_of"]
