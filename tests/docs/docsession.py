"""Run one markdown file's code blocks as one session, in order (test_docs.py states the rules).

    python docsession.py DOC LABEL        # in the scratch directory; $__DOCS_DIR for its files

Python blocks run in one namespace (`__name__ == "__main__"`, as a script), with top-level
`await` allowed: such a block runs on the session's event loop, which persists from block to
block (runs started by one await block go on in the next). Shell blocks run with `bash -e`, one
process each, carrying variables and the working directory from block to block. The first
failure ends the session; its message, printed after FAILURE_MARK, starts with `LABEL:LINE:`.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import gc
import inspect
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
import docblocks  # noqa: E402  (a script: its own directory is on the path)
import docservice  # noqa: E402

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # not for the docs

FAILURE_MARK = "=== docs harness: failure ==="
PRELUDE = HERE / "prelude.sh"
_ASYNCIO = str(Path(asyncio.__file__).parent)


class BlockFailed(Exception):
    """A block did not do what the document says; the message names file and line."""


@dataclass(frozen=True)
class Command:
    """One logical shell command: its first and last physical lines (in the file)."""

    first: int
    last: int
    text: str


def commands(block: docblocks.Block) -> list[Command]:
    """The block's commands: continuation lines joined; comments, blanks and heredoc bodies
    left out."""
    found: list[Command] = []
    lines = block.source.splitlines()
    i = 0
    while i < len(lines):
        start, text = i, lines[i]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + lines[i].strip()
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", text)
        if heredoc:
            while i + 1 < len(lines) and lines[i + 1].strip() != heredoc.group(1):
                i += 1
            i += 1
        if text.strip() and not text.strip().startswith("#"):
            found.append(Command(block.line + start, block.line + i, text.strip()))
        i += 1
    return found


def _without_comment(text: str) -> str:
    return re.sub(r"\s+#[^'\"]*$", "", text).rstrip()


def shell_script(block: docblocks.Block) -> str:
    """The bash script for a block: its lines at their own line numbers (so `$LINENO` is the
    file's line), background commands handed to the harness, the exit directive checked."""
    lines = [f'source "{PRELUDE}"', *[""] * (block.line - 2), *block.source.splitlines()]

    def at(line: int) -> int:
        return line - 1  # index in `lines` of the file's line

    cmds = commands(block)
    for cmd in cmds:
        bare = _without_comment(lines[at(cmd.last)])
        if bare.endswith("&") and not bare.endswith("&&"):
            lines[at(cmd.last)] = bare[:-1].rstrip()
            lines[at(cmd.first)] = "__docs_background " + lines[at(cmd.first)].lstrip()
    if cmds and block.expect_exit:
        last = cmds[-1]
        lines[at(last.first)] = "set +e; " + lines[at(last.first)]
        lines.append(f'__docs_rc=$?; set -e; __docs_expect {block.expect_exit} "$__docs_rc" '
                     f"{last.first}")
    lines.append("__docs_save")
    return "\n".join(lines) + "\n"


class Alarms(logging.Handler):
    """Errors that happen beside a block rather than in it: an exception in an event loop's
    callback, in a thread, or in a destructor; a warning from tether (a mistake in the example).
    A block that causes one fails."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []
        logging.getLogger("asyncio").addHandler(self)
        sys.unraisablehook = lambda u: self.seen.append(
            f"unraisable exception in {u.object!r}: "
            + "".join(traceback.format_exception(u.exc_type, u.exc_value, u.exc_traceback)))
        threading.excepthook = lambda a: self.seen.append(
            f"exception in thread {a.thread.name if a.thread else '?'}: "
            + "".join(traceback.format_exception(a.exc_type, a.exc_value, a.exc_traceback)))
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any,
                 **kwargs: Any) -> None:
            if category.__module__.split(".")[0] == "tether":  # tether warns of a mistake
                self.seen.append(f"{category.__name__}: {message}")
            shown(message, category, *args, **kwargs)

        warnings.showwarning = show

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(self.format(record))

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


class Session:
    """One document's blocks, run in order."""

    def __init__(self, doc: Path, label: str, workdir: Path) -> None:
        self.doc, self.label, self.workdir = doc, label, workdir
        self.namespace: dict[str, object] = {"__name__": "__main__"}
        self.loop = asyncio.new_event_loop()
        self.alarms = Alarms()
        self.ports: dict[str, str] = {}

    def with_ports(self, block: docblocks.Block) -> docblocks.Block:
        """The block with the session's ports in place of the documented ones."""
        source = PORT.sub(lambda m: m.group(1) + self.ports.get(m.group(2), m.group(2)),
                          block.source)
        if source != block.source:
            print(f"[docs harness] ports here: {self.ports}", flush=True)
        return dataclasses.replace(block, source=source)

    def run(self, block: docblocks.Block) -> None:
        if block.kind == docblocks.TEXT:
            return
        print(f"[docs harness] {self.label}:{block.line}: {block.kind} block", flush=True)
        block = self.with_ports(block)
        if block.kind == docblocks.PYTHON:
            self.python(block)
        else:
            self.shell(block)

    def python(self, block: docblocks.Block) -> None:
        source = "\n" * (block.line - 1) + block.source
        try:
            code = compile(source, str(self.doc), "exec", dont_inherit=True,
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            raise BlockFailed(f"{self.label}:{exc.lineno}: python block does not compile: "
                              f"{exc.msg}") from None
        try:
            result = eval(code, self.namespace)  # the docs are ours to run
            if inspect.iscoroutine(result):
                self.loop.run_until_complete(result)
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a block must not exit
            raise BlockFailed(self._python_failure(block, exc)) from None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        self.check_alarms(f"{self.label}:{block.line}: the python block")

    def check_alarms(self, who: str) -> None:
        seen = self.alarms.take()
        if seen:
            raise BlockFailed(f"{who} caused an error outside its own code:\n" + "\n".join(seen))

    def _python_failure(self, block: docblocks.Block, exc: BaseException) -> str:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if f.filename == str(self.doc)]
        line = ours[-1].lineno if ours else block.line
        shown = traceback.StackSummary.from_list(
            [f for f in frames if f.filename != __file__ and not f.filename.startswith(_ASYNCIO)])
        text = "".join(["Traceback (most recent call last):\n", *shown.format(),
                        *traceback.format_exception_only(exc)])
        return (f"{self.label}:{line}: {type(exc).__name__}: {exc} (python block at line "
                f"{block.line})\n{text}")

    def shell(self, block: docblocks.Block) -> None:
        harness = Path(os.environ["__DOCS_DIR"])
        script = harness / f"block-{block.line}.sh"
        script.write_text(shell_script(block))
        sys.stdout.flush()
        code = subprocess.run(["bash", str(script)], cwd=self.workdir, check=False,
                              stdout=sys.stdout.fileno(), stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
        if code == 0:
            return
        raise BlockFailed(self._shell_failure(block, code, harness))

    def _shell_failure(self, block: docblocks.Block, code: int, harness: Path) -> str:
        failed = harness / "failed"
        if not failed.exists():
            return (f"{self.label}:{block.line}: shell block exited {code} (before any of its "
                    "commands failed: a syntax error?)")
        line_text, _, status = failed.read_text().strip().partition(" ")
        line = int(line_text)
        command = next((c.text for c in commands(block) if c.first <= line <= c.last),
                       f"line {line}")
        expected = harness / "expected"
        why = (expected.read_text().strip() if expected.exists()
               else f"exit {status}" + (" (a command not found)" if status == "127" else ""))
        return f"{self.label}:{line}: `{command}` — {why}"

    def close(self, failed: bool) -> str | None:
        """Stop what the session left running; a message if that went wrong (an error beside
        the blocks' code, a background command that did not stop cleanly). The background
        commands' output is shown when the session failed."""
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        gc.collect()  # what the blocks left open (an HTTP client...) finalizes while its loop lives
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        problems = []
        seen = self.alarms.take()
        if seen:
            problems.append(f"{self.label}: an error outside the blocks' code, at the end of the "
                            "session:\n" + "\n".join(seen))
        if docservice.stop(show_logs=failed or bool(problems)) != 0:
            problems.append(f"{self.label}: a background command did not stop cleanly with "
                            "SIGINT (above)")
        return "\n".join(problems) or None


PORT = re.compile(r"(--port[ =]|\bport=|(?:localhost|127\.0\.0\.1|0\.0\.0\.0):)(\d{2,5})\b")
"""A port the document names: `--port 2024`, `port=2024`, `localhost:2024`..."""
DEFAULT_PORT = "2024"


def session_ports(text: str) -> dict[str, str]:
    """A free port for every port the document names, and for the server's default: documented
    ports may be taken on this machine, and several docs sessions may run at once."""
    ports: dict[str, str] = {}
    for named in [DEFAULT_PORT, *(m.group(2) for m in PORT.finditer(text))]:
        if named not in ports:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                ports[named] = str(probe.getsockname()[1])
    return ports


def main(argv: list[str]) -> int:
    doc, label = Path(argv[0]).resolve(), argv[1]
    sys.argv = [str(doc)]  # what a script made of the document's blocks would see
    os.environ.setdefault("__DOCS_DIR", str(Path.cwd() / ".docs-harness"))
    Path(os.environ["__DOCS_DIR"]).mkdir(parents=True, exist_ok=True)
    os.environ["__DOCS_SERVICE"] = str(HERE / "docservice.py")
    problem: str | None = None
    session = Session(doc, label, Path.cwd())
    text = doc.read_text(encoding="utf-8")
    session.ports = session_ports(text)
    os.environ["__DOCS_PORTS"] = ",".join(f"{k}={v}" for k, v in session.ports.items())
    try:
        for block in docblocks.parse(text, label):
            session.run(block)
    except (BlockFailed, docblocks.DocError) as exc:
        problem = str(exc)
    finally:
        stopped = session.close(failed=problem is not None)
    problems = [p for p in (problem, stopped) if p]
    if not problems:
        return 0
    print(f"\n{FAILURE_MARK}\n" + "\n".join(problems), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
