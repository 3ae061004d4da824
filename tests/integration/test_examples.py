"""Every program in examples/ runs as a user would run it, and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path: Path, timeout: float = 45) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TETHER_DB"}
    env["PYTHONIOENCODING"] = "utf-8"
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def _seconds(pattern: str, out: str) -> float:
    match = re.search(pattern, out)
    assert match, out
    return float(match.group(1))


def test_every_example_is_tested() -> None:
    tested = {"cancel_stream.py", "readme_cancel.py", "sync_timeout.py", "cancel_from_thread.py",
              "process_kill.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_readme_example_is_the_file_in_examples() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## A run you can stop\n\n```python\n(.*?)```", readme, re.S)
    assert match, "README has no python block under 'A run you can stop'"
    assert (EXAMPLES / "readme_cancel.py").read_text(encoding="utf-8") == match.group(1)


@pytest.mark.slow
def test_cancel_stream_the_langgraph_users_program_is_cancelled(tmp_path: Path) -> None:
    out = run_example("cancel_stream.py", tmp_path)
    assert out.splitlines() == [
        "Node executed, count = 1",
        "Node executed, count = 2",
        "Graph execution cancelled successfully",
    ]


def test_readme_cancel_prints_status_reason_and_latency(tmp_path: Path) -> None:
    out = run_example("readme_cancel.py", tmp_path)
    assert re.fullmatch(r"cancelled changed my mind \d+\.\d\d ms\n", out), out


def test_sync_timeout_stops_a_sync_node_in_time(tmp_path: Path) -> None:
    out = run_example("sync_timeout.py", tmp_path)
    assert re.search(r"^crawl stopped after \d+ pages", out, re.M), out
    assert "on_cancel hook: crawler closed" in out
    assert "run exceeded its timeout of 1.0s" in out
    assert _seconds(r"RunTimeout after (\d+\.\d+) s", out) < 1.5


def test_cancel_from_thread_then_resume_redoes_nothing(tmp_path: Path) -> None:
    out = run_example("cancel_from_thread.py", tmp_path)
    assert "editor: cancel requested" in out
    assert "run cancelled: the editor wants a break" in out
    kept = int(_seconds(r"kept: chapter (\d+)", out))
    assert 1 <= kept < 6
    written = re.findall(r"^wrote chapter (\d+)$", out, re.M)
    assert written == [str(n) for n in range(1, 7)]  # each chapter once: nothing redone
    assert "resumed run success: chapter 6" in out


def test_process_kill_kills_a_node_that_will_not_stop(tmp_path: Path) -> None:
    out = run_example("process_kill.py", tmp_path)
    assert "terminate_node crunch: killed" in out
    assert "final checkpoint: True" in out
    assert _seconds(r"RunTimeout after (\d+\.\d+) s", out) < 1.0 + 0.6 + 0.5
