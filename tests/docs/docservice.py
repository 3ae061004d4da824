"""Long-running commands of the docs' shell blocks: `tether serve`, `tether worker`, and any
command a block sends to the background with `&`.

    python docservice.py run -- tether serve app.graphs:graph     # from a block, in the foreground
    python docservice.py start -- tether serve app.graphs:graph   # from a block, `... &`
    python docservice.py stop                                      # from the session, at its end

`run` starts the command, waits until it is ready (a server's "Uvicorn running on", a worker's
"ready" log line), stops it with SIGINT and exits with its status: a service documented as a
command must start and stop cleanly. A command that exits before it is ready exits with its own
status (so `<!-- test: exit 6 -->` can document a port in use). `start` leaves the command
running (a supervisor process records its id and, later, its status) once it is ready; `stop`
sends SIGINT to every command started so, and fails unless each exits 0.

A server started without `--port` listens on the session's stand-in for the default port
(docsession.py gives every documented port a free one: documented ports may be taken).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = re.compile(r"Uvicorn running on|Application startup complete|worker \S+ ready")
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0
SERVICES_DIR_ENV = "__DOCS_DIR"


def _services_dir() -> Path:
    root = Path(os.environ.get(SERVICES_DIR_ENV, tempfile.gettempdir())) / "services"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading NAME=value words (as bash passes `VAR=x tether serve` through a function)."""
    env: dict[str, str] = {}
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
        name, _, value = argv[0].partition("=")
        env[name] = value
        argv = argv[1:]
    return env, argv


def _is_service(argv: list[str]) -> bool:
    """A command that says when it is ready: a server or a worker."""
    return any(word in ("serve", "worker") for word in argv[:4])


def _wait_ready(log: Path, proc: subprocess.Popen[bytes], wants_ready: bool) -> int | None:
    """None once ready; the exit status if the command ended first."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        code = proc.poll()
        if code is not None:
            return code
        if not wants_ready or READY.search(log.read_text(errors="replace")):
            return None
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            print(f"[docs harness] not ready after {READY_TIMEOUT:.0f} s: {_show(proc.args)}")
            return 124
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            print(f"[docs harness] still running {STOP_TIMEOUT:.0f} s after SIGINT: killed")
            proc.wait()
            return 137
    return proc.returncode


def _show(args: object) -> str:
    return " ".join(map(str, args)) if isinstance(args, list) else str(args)


def _with_port(command: list[str]) -> list[str]:
    """A server command without `--port` gets the session's stand-in for the default port."""
    if "serve" not in command[:4] or any(w in ("--port", "-p") or w.startswith("--port=")
                                         for w in command):
        return command
    ports = dict(p.split("=") for p in os.environ.get("__DOCS_PORTS", "").split(",") if p)
    return [*command, "--port", ports["2024"]] if "2024" in ports else command


def run(argv: list[str]) -> int:
    """A service in the foreground: start, wait until ready, SIGINT, its exit status."""
    env, command = _split_env(argv)
    command = _with_port(command)
    with tempfile.NamedTemporaryFile(suffix=".log") as handle:
        log = Path(handle.name)
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=handle,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        early = _wait_ready(log, proc, wants_ready=True)
        code = early if early is not None else _stop(proc)
        sys.stdout.write(log.read_text(errors="replace"))
    if early is None:
        print(f"[docs harness] started, was ready, stopped with SIGINT: exit {code}")
    return code


def start(argv: list[str]) -> int:
    """A service in the background: a supervisor runs it; return once it is ready."""
    env, command = _split_env(argv)
    command = _with_port(command)
    record = Path(tempfile.mkdtemp(prefix="svc-", dir=_services_dir()))
    (record / "command").write_text(_show(command))
    log = record / "log"
    supervisor = subprocess.Popen(
        [sys.executable, __file__, "keep", str(record), "--", *command],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 2 * READY_TIMEOUT
    while not (record / "pid").exists() and supervisor.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    wants_ready = _is_service(command)
    while True:
        if (record / "rc").exists():
            sys.stdout.write(log.read_text(errors="replace"))
            return int((record / "rc").read_text())
        text = log.read_text(errors="replace") if log.exists() else ""
        if not wants_ready or READY.search(text):
            print(f"[docs harness] running in the background: {_show(command)}")
            return 0
        if time.monotonic() > deadline:
            print(f"[docs harness] not ready in time: {_show(command)}\n{text}")
            return 124
        time.sleep(0.05)


def keep(record: Path, command: list[str]) -> int:
    """The supervisor of a background service: run it, record its pid and its status."""
    with (record / "log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        (record / "pid").write_text(str(proc.pid))
        code = proc.wait()
    (record / "rc").write_text(str(code))
    return 0


def stop(*, show_logs: bool = False) -> int:
    """Stop every background service with SIGINT; 1 unless each exits 0 (reasons printed, and
    every service's output with `show_logs`)."""
    failed = 0
    for record in sorted(_services_dir().glob("svc-*")):
        command = (record / "command").read_text()
        code = _stop_recorded(record)
        log = record / "log"
        output = log.read_text(errors="replace") if log.exists() else ""
        if code != 0:
            failed = 1
            print(f"[docs harness] background command did not stop cleanly (exit {code}): "
                  f"{command}\n{output}")
        elif show_logs:
            print(f"[docs harness] output of the background command `{command}`:\n{output}")
    return failed


def _stop_recorded(record: Path) -> int:
    rc = record / "rc"
    if not rc.exists() and (record / "pid").exists():
        pid = int((record / "pid").read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while not rc.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not rc.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return 137
    return int(rc.read_text()) if rc.exists() else 127


def main(argv: list[str]) -> int:
    action, rest = argv[0], argv[1:]
    if action == "stop":
        return stop()
    if action == "keep":
        return keep(Path(rest[0]), rest[2:])
    command = rest[1:] if rest[:1] == ["--"] else rest
    return run(command) if action == "run" else start(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
