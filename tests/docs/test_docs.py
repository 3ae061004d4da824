"""Every code block of README.md and docs/*.md runs as written: one test per file.

The rules a document follows (tests/docs/docblocks.py parses, docsession.py runs):

- ```python blocks run in order in one namespace per file, as one script (`__name__` is
  "__main__"): a later block may use what an earlier one defined. Top-level `await` is allowed;
  such blocks share one event loop for the file.
- ```console, ```bash, ```sh, ```shell and bare ``` blocks are shell commands, run in order with
  `bash -e`; variables and the working directory carry over from block to block. A ```console
  block may be a terminal session: its `$ ` lines are the commands, the rest their output (not
  compared). Python and
  shell blocks interleave in document order, in one scratch directory per file, with
  tests/docs/project on PYTHONPATH (`app.graphs:graph` is the graph the CLI docs run) and the
  checkout's top directory too (`python -m bench`).
- In shell blocks, `pip install ...` and `python -m pytest` are skipped with a note: CI runs the
  README's install-and-test commands as written in a fresh venv. `tether serve` and
  `tether worker` are started, waited for until ready, stopped with SIGINT, and must exit 0; a
  command ending in `&` is left running until the end of the file (a server is waited for until
  it answers), then stopped the same way.
- ```text blocks (output, diagrams, synopses) are not run. Any other language is an error.
- `<!-- test: exit N -->` on the line before a shell block: its last command exits N, as the
  document says. There is no directive to skip a block.
- A document that mentions `DATABASE_URL` gets `$DATABASE_URL`: the test PostgreSQL server
  ($TETHER_TEST_PG_DSN) on a fresh schema, dropped afterwards (skipped without a server, a
  failure with TETHER_REQUIRE_PG=1).

A block fails when it raises, when a command exits otherwise than documented, and when it causes
an error beside its own code (an exception in an event loop callback, a thread or a destructor;
a warning from tether, such as a StrictnessWarning). A failure names the file and line, and the
command or the exception, then shows the output.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.conftest import fresh_schema

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SESSION_TIMEOUT = 150.0
FAILURE_MARK = "=== docs harness: failure ==="
SHOWN_LINES = 120


def session_env(harness: Path, database_url: str | None) -> dict[str, str]:
    """The environment a document's blocks run in."""
    env = {k: v for k, v in os.environ.items() if k not in ("TETHER_DB", "DATABASE_URL")}
    paths = [str(PROJECT), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join(paths), PYTHONIOENCODING="utf-8",
               PYTHONUNBUFFERED="1", __DOCS_DIR=str(harness))
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def database_for(text: str) -> Iterator[str | None]:
    """`$DATABASE_URL` for a document that uses it: a fresh schema as the search path."""
    if "DATABASE_URL" not in text:
        yield None
        return
    import psycopg

    with fresh_schema() as (dsn, schema):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        joiner = "&" if "?" in dsn else "?"
        yield f"{dsn}{joiner}options=-csearch_path%3D{schema}"


def run_document(doc: Path, workdir: Path, database_url: str | None = None,
                 timeout: float = SESSION_TIMEOUT) -> tuple[int, str]:
    """Run every block of `doc` (docsession.py in a subprocess); its status and output."""
    label = str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else doc.name
    scratch, harness = workdir / "scratch", workdir / "harness"
    scratch.mkdir()
    harness.mkdir()
    env = session_env(harness, database_url)
    argv = [sys.executable, str(HERE / "docsession.py"), str(doc), label]
    try:
        done = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=timeout,
                              check=False, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        subprocess.run([sys.executable, str(HERE / "docservice.py"), "stop"], env=env,
                       capture_output=True, timeout=60, check=False)
        started = [ln for ln in out.splitlines() if ln.startswith("[docs harness] ")]
        where = started[-1].removeprefix("[docs harness] ") if started else label
        return 124, f"{FAILURE_MARK}\n{where} still running after {timeout:.0f} s\n{out}"
    return done.returncode, done.stdout + done.stderr


def failure_report(output: str) -> str:
    """The harness's message first (file:line, command or exception), then the output."""
    before, _, message = output.partition(FAILURE_MARK)
    shown = before.rstrip().splitlines()[-SHOWN_LINES:]
    return f"{message.strip()}\n--- output (last {len(shown)} lines) ---\n" + "\n".join(shown)


@pytest.mark.timeout(SESSION_TIMEOUT + 30)
@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs(doc: Path, tmp_path: Path) -> None:
    with database_for(doc.read_text(encoding="utf-8")) as url:
        code, output = run_document(doc, tmp_path, url)
    if code != 0:
        pytest.fail(failure_report(output), pytrace=False)
