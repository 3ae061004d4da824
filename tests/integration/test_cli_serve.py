"""`tether serve` hands the graph to `tether.server.serve`, imported only when it runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli.app import app

HERE = Path(__file__).parent


@pytest.fixture
def graphs_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_serve_passes_the_graph_and_options_to_the_server(
        monkeypatch: pytest.MonkeyPatch, graphs_on_path: None, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("tether.server")
    fake.serve = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tether.server", fake)
    db = str(tmp_path / "s.db")
    result = CliRunner().invoke(app, ["serve", "cli_graphs:counter", "--port", "8123",
                                      "--host", "0.0.0.0", "--db", db, "--no-auth"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert set(call) == {"graphs", "db", "host", "port", "no_auth"}
    assert list(call["graphs"]) == ["counter"]
    assert call["graphs"]["counter"].name == "LangGraph"
    assert (call["db"], call["host"], call["port"], call["no_auth"]) == (db, "0.0.0.0", 8123,
                                                                         True)


def test_serve_names_the_graph_with_name(monkeypatch: pytest.MonkeyPatch,
                                         graphs_on_path: None) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("tether.server")
    fake.serve = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tether.server", fake)
    result = CliRunner().invoke(app, ["serve", "cli_graphs:counter", "--name", "agent",
                                      "--port", "0"])
    assert result.exit_code == 0, result.output
    assert list(calls[0]["graphs"]) == ["agent"]
    assert calls[0]["no_auth"] is False


@pytest.mark.parametrize(("blocked", "message"), [
    ("fastapi", "error: `tether serve` needs the server extra: pip install 'tether[server]'"),
    ("tether.server", "error: `tether serve` needs the server extra: pip install 'tether[server]'"),
])
def test_serve_without_the_server_says_what_is_missing(
        monkeypatch: pytest.MonkeyPatch, graphs_on_path: None, blocked: str,
        message: str) -> None:
    if blocked == "tether.server":
        monkeypatch.setitem(sys.modules, "tether.server", None)
    else:
        class Finder:
            @staticmethod
            def find_spec(name: str, *args: Any) -> None:
                if name == "tether.server":
                    raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

        monkeypatch.delitem(sys.modules, "tether.server", raising=False)
        monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    result = CliRunner().invoke(app, ["serve", "cli_graphs:counter"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_serve_reports_options_the_server_refuses(monkeypatch: pytest.MonkeyPatch,
                                                  graphs_on_path: None) -> None:
    def refuse(**kwargs: Any) -> None:
        raise ValueError("the server requires API keys and none were given")

    fake = types.ModuleType("tether.server")
    fake.serve = refuse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tether.server", fake)
    result = CliRunner().invoke(app, ["serve", "cli_graphs:counter", "--port", "0"])
    assert result.exit_code == 2, result.output
    assert "requires API keys" in result.output


def test_serve_on_an_address_in_use_exits_6_in_one_line(graphs_on_path: None) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "cli_graphs:counter", "--no-auth",
                                          "--port", str(port)])
    assert result.exit_code == 6, result.output
    assert result.output.strip() == f"error: cannot listen on 127.0.0.1:{port}: already in use"


def test_serve_starts_the_real_server_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    import httpx

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TETHER_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "serve", "cli_graphs:counter", "--no-auth", "--port",
         "0", "--db", str(tmp_path / "serve.db")],
        cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the server exited before it listened"
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port is not None
        response = httpx.get(f"http://127.0.0.1:{port}/assistants/counter", timeout=10)
        assert response.status_code == 200, response.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
