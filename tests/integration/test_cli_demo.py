"""`tether demo`, the README's first command: cancel mid-step and resume, in under a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.types import RunStatus


@pytest.mark.slow
def test_demo_cancels_mid_step_and_resumes_without_redoing_work(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("TETHER_DB", None)
    env.pop("COLUMNS", None)  # piped, as the README's `tether demo` in a script or CI log
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tether", "demo", "--db", str(db)],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            encoding="utf-8", timeout=60, check=False)
    assert time.monotonic() - started < 60
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # A step's tasks start in LangGraph's order: by node name.
    assert "▶ step 2  read_archive, search_papers, search_web" in out
    assert "■ cancelled" in out
    assert 'reason user: "demo: cancelled mid-step' in out
    assert "cancel latency" in out
    audit = out.split("2. What the cancel did")[1].split("3. Resume it")[0]
    phases = [line.split()[0] for line in audit.splitlines()[2:] if line.strip()]
    cancel = [p for p in phases if p in ("request", "propagate", "terminate_node", "cleanup",
                                         "checkpoint", "terminate")]
    assert cancel[:6] == ["request", "propagate", "terminate_node", "cleanup", "checkpoint",
                          "terminate"]
    assert "pending writes" in out and "search_web     notes" in out
    assert "(kept from before the cancel: not run again)" in out
    assert "✔ success" in out
    assert ("first run executed:   plan, read_archive (cancelled), search_papers, search_web"
            in out)
    assert "resumed run executed: read_archive, write_report" in out
    rules = [line for line in out.splitlines() if line.startswith("─")]
    assert rules and max(map(len, rules)) <= 100  # a pipe's width is unbounded; rules are not
    with SqliteSaver(str(db)) as store:
        statuses = [info.status for info in store.list_runs()]
    assert statuses == [RunStatus.SUCCESS, RunStatus.CANCELLED]


def test_demo_graph_runs_from_the_cli_like_any_graph(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    env.pop("TETHER_DB", None)
    result = subprocess.run(
        [sys.executable, "-m", "tether", "run", "tether.cli.demo:graph", "--input",
         '{"topic": "tests"}', "--db", str(tmp_path / "d.db")],
        cwd=tmp_path, env=env, capture_output=True, text=True, encoding="utf-8", timeout=60,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"report": "tests: ' in result.stdout


def test_agent_demo_stops_during_a_tool_and_between_model_and_tools_then_repairs(
        tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("TETHER_DB", None)
    result = subprocess.run([sys.executable, "-m", "tether", "demo", "--agent", "--db", str(db)],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            encoding="utf-8", timeout=60, check=False)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    stop_tool = out.split("1. Stop during a tool")[1].split("2. Stop between")[0]
    assert "cancelled" in stop_tool and "on_cancel: archive connection closed" in stop_tool
    between = out.split("2. Stop between the model and its tools")[1].split("3. The repaired")[0]
    assert "tool  [call-clock] success: 12:00 UTC" in between  # the kept result
    assert "tool  [call-archive] error: Cancelled: the user pressed stop" in between
    assert "(budget: steps budget of 1 exceeded (2))" in between
    thread = out.split("The thread")[1]
    assert thread.count("[call-clock]") == 1 and thread.count("[call-archive]") == 1
    assert "tool  [call-clock-2] error: Cancelled: steps budget of 1 exceeded (2)" in thread
    assert "Every tool call is answered exactly once" in out
    store = SqliteSaver(str(db))
    try:
        runs = store.list_runs()
        assert [r.status for r in runs] == [RunStatus.SUCCESS, RunStatus.CANCELLED,
                                            RunStatus.CANCELLED]
        assert [e.phase for e in store.events(runs[0].run_id)].count("repair") == 1
    finally:
        store.close()
