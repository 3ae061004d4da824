"""The `tether` command line in a subprocess: runs, exit codes, Ctrl-C, resume, records."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.store.sqlite import SqliteStore
from tether.types import RunStatus

HERE = Path(__file__).parent
CANCEL_PHASES = ["request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TETHER_DB"}
    env.update(COLUMNS="200", PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    return env


def _argv(args: tuple[str, ...]) -> list[str]:
    if args and args[0] == "tether":  # a command the CLI printed
        args = args[1:]
    return [sys.executable, "-m", "tether", *args]


def tether(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end (from this directory, so `cli_graphs:...` imports)."""
    return subprocess.run(_argv(args), cwd=HERE, env=_env(), capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout, check=False)


class Running:
    """The CLI running in the background, its output read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(_argv(args), cwd=HERE, env={**_env(), **(env or {})},
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, encoding="utf-8")
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append(line)
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        self.proc.kill()
        raise AssertionError(f"{text!r} not seen; output:\n{''.join(self.seen)}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
            self._reader.join(5)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        return code, "".join(self.seen)

    @property
    def run_id(self) -> str:
        match = re.search(r"^run (\S+)  thread", "".join(self.seen), re.M)
        assert match, "".join(self.seen)
        return match.group(1)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


def _resume_command(out: str) -> list[str]:
    match = re.search(r"^resume it: (tether resume .+)$", out, re.M)
    assert match, out
    return shlex.split(match.group(1))


def _store(db: str) -> SqliteSaver:
    return SqliteSaver(db)


# -- running ------------------------------------------------------------------------------------


def test_run_to_success_prints_progress_and_final_state(db: str) -> None:
    result = tether("run", "cli_graphs:counter", "--input", '{"target": 3}', "--db", db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "▶ step 1  tick" in result.stdout
    assert '✓ tick {"count": 3}' in result.stdout
    assert "✔ success" in result.stdout
    final = result.stdout.split("final state:")[1]
    assert '"count": 3' in final


def test_run_accepts_an_uncompiled_builder_and_json_from_a_file(db: str, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text('{"target": 2}')
    result = tether("run", "cli_graphs:counter_builder", "--input", f"@{tmp_path / 'input.json'}",
                    "--db", db, "--thread", "t-file")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"count": 2' in result.stdout
    with _store(db) as store:
        (info,) = store.list_runs(thread_id="t-file")
        assert info.status is RunStatus.SUCCESS


def test_run_gives_a_graph_without_a_store_one_in_the_db_file(db: str) -> None:
    for expected in (1, 2):  # two processes: the second sees what the first wrote
        result = tether("run", "cli_graphs:visits", "--input", '{"user": "ada"}', "--db", db)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f'"visits": {expected}' in result.stdout.split("final state:")[1]
    with SqliteStore(db) as store:
        item = store.get(("visits",), "ada")
        assert item is not None and item.value == {"n": 2}


def test_run_uses_tether_db_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.db"
    env = {**_env(), "TETHER_DB": str(path)}
    result = subprocess.run(_argv(("run", "cli_graphs:counter")), cwd=HERE, env=env,
                            capture_output=True, text=True, encoding="utf-8", timeout=30,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    with _store(str(path)) as store:
        assert [i.status for i in store.list_runs()] == [RunStatus.SUCCESS]


def test_run_prints_the_extra_stream_modes_asked_for(db: str) -> None:
    result = tether("run", "cli_graphs:counter", "--db", db, "-m", "values")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '[values] {"count": 1' in result.stdout


def test_run_prints_a_chat_models_tokens_with_stream_mode_messages(db: str) -> None:
    result = tether("run", "cli_graphs:chat", "--db", db, "-m", "messages", "--input",
                    '{"messages": [{"role": "user", "content": "hi"}]}')
    assert result.returncode == 0, result.stdout + result.stderr
    assert '[messages] model "Hello"' in result.stdout
    assert '[messages] model "model"' in result.stdout


def test_timeout_cancels_the_run_with_exit_code_4(db: str) -> None:
    result = tether("run", "cli_graphs:counter", "--input",
                    '{"target": 1000, "step_seconds": 0.1}', "--timeout", "0.5", "--db", db)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "■ timeout" in result.stdout
    assert "run exceeded its timeout of 0.5s" in result.stdout
    command = _resume_command(result.stdout)
    with _store(db) as store:
        info = store.get_run(command[2])
        assert info is not None and info.status is RunStatus.TIMEOUT


def test_failing_node_exits_1_with_the_error(db: str) -> None:
    result = tether("run", "cli_graphs:failing", "--db", db)
    assert result.returncode == 1
    assert "ValueError: the node failed on purpose" in result.stdout


def test_interrupt_exits_5_and_resume_value_answers_it(db: str) -> None:
    paused = tether("run", "cli_graphs:approval", "--thread", "hitl", "--input",
                    '{"question": "ship it?"}', "--db", db)
    assert paused.returncode == 5, paused.stdout + paused.stderr
    assert 'waiting for input: {"question": "ship it?"}' in paused.stdout
    answered = tether("run", "cli_graphs:approval", "--thread", "hitl", "--resume-value",
                      '"yes"', "--db", db)
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert '"answer": "yes"' in answered.stdout


@pytest.mark.parametrize(("ref", "message"), [
    ("no_such_module:graph", "no module named 'no_such_module'"),
    ("cli_graphs", "is not of the form module:attribute"),
    ("cli_graphs:missing", "has no attribute 'missing'"),
    ("cli_graphs:not_a_graph", "is a int, not a tether graph"),
])
def test_bad_graph_reference_is_a_usage_error(db: str, ref: str, message: str) -> None:
    result = tether("run", ref, "--db", db)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


@pytest.mark.parametrize(("args", "message"), [
    (("--input", "{not json"), "not valid JSON"),
    (("--stream-mode", "everything"), "unknown stream mode 'everything'"),
    (("--resume-value", "1"), "give its --thread"),
])
def test_bad_options_are_usage_errors(db: str, args: tuple[str, ...], message: str) -> None:
    result = tether("run", "cli_graphs:counter", "--db", db, *args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_sigint_cancels_gracefully_and_resume_finishes_the_run(db: str) -> None:
    running = Running("run", "cli_graphs:counter", "--input",
                      '{"target": 12, "step_seconds": 0.2}', "--db", db)
    running.wait_for('✓ tick {"count": 2}')
    running.signal(signal.SIGINT)
    code, out = running.finish()
    assert code == 3, out
    assert "SIGINT: cancelling run" in out
    assert "■ cancelled" in out
    command = _resume_command(out)
    run_id = command[2]
    assert command[3:] == ["--graph", "cli_graphs:counter", "--db", db]
    with _store(db) as store:
        info = store.get_run(run_id)
        assert info is not None and info.status is RunStatus.CANCELLED
        assert info.reason is not None and info.reason.kind == "user"
        assert info.reason.requested_by == "tether-cli"
        snapshot = store.load(run_id)
        assert snapshot.checkpoint_id == info.checkpoint_id is not None
        assert 2 <= snapshot.values["count"] < 12
        assert snapshot.next == ("tick",)
        phases = [e.phase for e in store.events(run_id) if e.phase in CANCEL_PHASES]
        assert phases == CANCEL_PHASES
    resumed = tether(*command)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming run {run_id}" in resumed.stdout
    assert '"count": 12' in resumed.stdout.split("final state:")[1]


def test_sigterm_cancels_with_kind_shutdown(db: str) -> None:
    running = Running("run", "cli_graphs:counter", "--input",
                      '{"target": 100, "step_seconds": 0.1}', "--db", db)
    running.wait_for("✓ tick")
    running.signal(signal.SIGTERM)
    code, out = running.finish()
    assert code == 3, out
    assert 'shutdown: "the tether CLI received SIGTERM"' in out
    with _store(db) as store:
        info = store.get_run(running.run_id)
        assert info is not None and info.status is RunStatus.CANCELLED
        assert info.reason is not None and info.reason.kind == "shutdown"


def test_second_sigint_forces_exit_at_once(db: str) -> None:
    running = Running("run", "cli_graphs:stubborn", "--db", db)
    running.wait_for("▶ step 1  stubborn_sleep")
    running.signal(signal.SIGINT)
    running.wait_for("cancelling run")
    started = time.monotonic()
    running.signal(signal.SIGINT)
    code, out = running.finish(timeout=10)
    assert code == 130, out
    assert time.monotonic() - started < 1.5  # the sync node's 2 s grace was not waited for
    assert "second SIGINT: exiting now" in out
    shown = tether("runs", "show", running.run_id, "--db", db)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    # The owner died mid-cancel: the store reports the run as orphaned, never as success.
    assert re.search(r"^status\s+(cancelling|error)", shown.stdout, re.M), shown.stdout


def test_ctrl_c_while_the_graph_imports_exits_130_quietly(db: str) -> None:
    running = Running("run", "cli_graphs:counter", "--db", db,
                      env={"CLI_GRAPHS_SLOW_IMPORT": "1"})
    running.wait_for("importing slowly")
    running.signal(signal.SIGINT)
    code, out = running.finish(timeout=10)
    assert code == 130, out
    assert "Traceback" not in out and "Aborted" not in out


# -- records ------------------------------------------------------------------------------------


def test_runs_ls_show_and_events(db: str) -> None:
    done = tether("run", "cli_graphs:counter", "--thread", "t1", "--db", db)
    assert done.returncode == 0
    with _store(db) as store:
        (info,) = store.list_runs()
    listed = tether("runs", "ls", "--db", db)
    assert listed.returncode == 0
    assert re.search(rf"^{info.run_id}\s+success\s+t1", listed.stdout, re.M), listed.stdout
    assert "no runs" in tether("runs", "ls", "--status", "cancelled", "--db", db).stdout
    assert "no runs" in tether("runs", "ls", "--thread", "other", "--db", db).stdout
    again = tether("run", "cli_graphs:counter", "--thread", "t2", "--db", db)
    assert again.returncode == 0
    with _store(db) as store:
        newest_first = [i.run_id for i in store.list_runs()]
    quiet = tether("runs", "ls", "-q", "--db", db)
    assert quiet.returncode == 0 and quiet.stdout.splitlines() == newest_first
    assert tether("runs", "ls", "--quiet", "-n", "1", "--db", db).stdout == f"{newest_first[0]}\n"
    assert tether("runs", "ls", "-q", "--thread", "other", "--db", db).stdout == ""
    shown = tether("runs", "show", info.run_id, "--db", db)
    assert shown.returncode == 0
    assert re.search(r"^status\s+success", shown.stdout, re.M)
    assert '"count": 3' in shown.stdout
    assert re.search(r"^next\s+\(nothing: the graph is done\)", shown.stdout, re.M)
    events = tether("runs", "events", info.run_id, "--db", db)
    assert events.returncode == 0
    assert [line.split()[0] for line in events.stdout.splitlines()[1:]] == \
        ["create", "start", "finish"]


def test_runs_show_of_a_cancelled_run_lists_what_was_kept(db: str) -> None:
    # Each step outlasts the timeout: it lands in a node (never between two steps).
    result = tether("run", "cli_graphs:counter", "--input",
                    '{"target": 1000, "step_seconds": 30}', "--timeout", "0.4", "--db", db)
    assert result.returncode == 4
    run_id = _resume_command(result.stdout)[2]
    shown = tether("runs", "show", run_id, "--db", db)
    assert re.search(r"^status\s+timeout", shown.stdout, re.M)
    assert re.search(r"^reason\s+timeout: \"run exceeded", shown.stdout, re.M)
    assert re.search(r"^next\s+tick", shown.stdout, re.M)
    assert re.search(r"^cancelled tasks\s+tick", shown.stdout, re.M)
    events = tether("runs", "events", run_id, "--db", db).stdout
    phases = [line.split()[0] for line in events.splitlines()[1:]]
    assert [p for p in phases if p in CANCEL_PHASES] == CANCEL_PHASES


def test_unknown_run_and_missing_database(db: str, tmp_path: Path) -> None:
    tether("run", "cli_graphs:counter", "--db", db)
    unknown = tether("runs", "show", "no-such-run", "--db", db)
    assert unknown.returncode == 1
    assert "no run 'no-such-run'" in unknown.stderr
    missing = tether("runs", "ls", "--db", str(tmp_path / "nothing.db"))
    assert missing.returncode == 2
    assert "no database at" in " ".join(missing.stderr.split())


def test_cancel_of_a_finished_run_prints_its_terminal_record(db: str) -> None:
    tether("run", "cli_graphs:counter", "--db", db)
    with _store(db) as store:
        (info,) = store.list_runs()
    result = tether("cancel", info.run_id, "--db", db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run already ended: success" in result.stdout
    assert re.search(r"^status\s+success", result.stdout, re.M)
    with _store(db) as store:
        after = store.get_run(info.run_id)
        assert after is not None and after.status is RunStatus.SUCCESS and after.reason is None


def test_cancel_from_another_process_stops_a_cli_run(db: str) -> None:
    running = Running("run", "cli_graphs:counter", "--input",
                      '{"target": 1000, "step_seconds": 0.1}', "--db", db)
    running.wait_for("✓ tick")
    cancel = tether("cancel", running.run_id, "--reason", "from elsewhere", "--wait", "10",
                    "--db", db)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert "cancel requested" in cancel.stdout
    assert re.search(r"^status\s+cancelled", cancel.stdout, re.M), cancel.stdout
    code, out = running.finish()
    assert code == 3, out
    assert 'user: "from elsewhere" (by tether-cli)' in out


def test_resume_finds_the_graph_recorded_on_the_thread(db: str) -> None:
    result = tether("run", "cli_graphs:counter", "--input",
                    '{"target": 6, "step_seconds": 0.1}', "--timeout", "0.25", "--db", db)
    assert result.returncode == 4
    run_id = _resume_command(result.stdout)[2]
    resumed = tether("resume", run_id, "--db", db)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert '"count": 6' in resumed.stdout.split("final state:")[1]
    finished = tether("resume", _latest(db), "--db", db)
    assert finished.returncode == 1
    assert "only cancelled, timed-out or failed runs can be resumed" in finished.stdout


def _latest(db: str) -> str:
    with _store(db) as store:
        return store.list_runs(status="success", limit=1)[0].run_id


def test_python_dash_m_tether_shows_help_with_exit_codes() -> None:
    result = tether("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for command in ("run", "resume", "cancel", "serve", "demo", "runs"):
        assert f" {command} " in text
    assert "3 cancelled, 4 timeout, 5 interrupted" in text


# -- first minutes --------------------------------------------------------------------------------


def test_a_failed_run_shows_its_node_and_traceback_everywhere(db: str) -> None:
    live = tether("run", "cli_graphs:failing", "--db", db)
    assert live.returncode == 1
    assert "error in node explode: ValueError: the node failed on purpose" in live.stdout
    assert 'in explode\n    raise ValueError("the node failed on purpose")' in live.stdout
    with _store(db) as store:
        (info,) = store.list_runs()
    shown = tether("runs", "show", info.run_id, "--db", db).stdout
    assert re.search(r"^failed in\s+explode\s*$", shown, re.M), shown
    assert re.search(r"^traceback\s+Traceback \(most recent call last\):", shown, re.M), shown
    events = tether("runs", "events", info.run_id, "--db", db).stdout
    assert "the node failed on purpose" in events
    assert 'cli_graphs.py", line' in events


def test_runs_ls_piped_is_one_line_per_run_naming_the_graph_as_run(db: str) -> None:
    tether("run", "cli_graphs:counter", "--db", db)
    tether("run", "cli_graphs:failing", "--db", db)
    env = {k: v for k, v in _env().items() if k != "COLUMNS"}
    listed = subprocess.run(_argv(("runs", "ls", "--db", db)), cwd=HERE, env=env,
                            capture_output=True, text=True, encoding="utf-8", timeout=30,
                            check=False)
    lines = listed.stdout.rstrip("\n").splitlines()
    assert len(lines) == 3, listed.stdout  # a header and one line per run, nothing wrapped
    assert re.search(r"\serror\s.*\scli_graphs:failing\s.*ValueError: the node failed on "
                     r"purpose\s*$", lines[1]), lines[1]
    assert re.search(r"\ssuccess\s.*\scli_graphs:counter\s", lines[2]), lines[2]


def test_a_db_that_is_not_a_tether_database_is_one_clear_line(tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    other.write_text("just some notes\n")
    result = tether("runs", "ls", "--db", str(other))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: --db {other}: is not a SQLite database; tether " \
                                    "leaves it untouched"
    assert other.read_text() == "just some notes\n"


def test_an_unknown_status_lists_the_valid_ones(db: str) -> None:
    tether("run", "cli_graphs:counter", "--db", db)
    result = tether("runs", "ls", "--status", "done", "--db", db)
    assert result.returncode == 2
    text = " ".join(result.stderr.replace("│", " ").split())
    assert "unknown status 'done' (choose from pending, running, cancelling, interrupted, " \
           "success, error, cancelled, timeout)" in text


@pytest.mark.parametrize("command", [(), ("run",), ("runs", "ls"), ("serve",), ("cancel",),
                                     ("resume",), ("demo",), ("worker",)])
def test_help_shows_no_type_tags(command: tuple[str, ...]) -> None:
    result = tether(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert not re.search(r"<(str|bool|int|float|list\[str\])", result.stdout), result.stdout
    if command == ("run",):
        assert re.search(r"--timeout\s+SECONDS", result.stdout)
        assert re.search(r"--db\s+PATH", result.stdout)
