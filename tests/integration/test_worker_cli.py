"""`tether worker` refuses what it cannot serve before it touches a database (exit code 2)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tether.cli.app import app

GRAPH = "integration.worker_graphs:pipeline"


@pytest.mark.parametrize(("args", "says"), [
    ([GRAPH, "--db", "tether.db"], "PostgreSQL URL"),
    ([GRAPH], "PostgreSQL URL"),
    (["no_such_module:graph", "--db", "postgresql://x@127.0.0.1:1/none"], "no_such_module"),
    (["integration.worker_graphs:LEDGER", "--db", "postgresql://x@127.0.0.1:1/none"],
     "not a tether graph"),
    ([GRAPH, "--db", "postgresql://x@127.0.0.1:1/none", "--on-shutdown", "later"],
     "requeue or cancel"),
    ([GRAPH, GRAPH, "--db", "postgresql://x@127.0.0.1:1/none", "--name", "one"], "one graph"),
])
def test_worker_refuses_bad_arguments_with_exit_code_2(
        args: list[str], says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_DB", raising=False)
    result = CliRunner().invoke(app, ["worker", *args])
    assert result.exit_code == 2
    assert says in " ".join(result.output.split())
