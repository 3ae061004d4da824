"""`tether serve` and `tether worker` start from a LangGraph project's `langgraph.json`: its
graphs by id (file paths and modules, factories), its env, its local dependencies."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli.app import app
from tether.worker.project import Project, ProjectError, dotenv

GRAPH = """
    import os
    from typing import TypedDict

    from helpers import shout                 # from ./src, a local dependency
    from tether.graph import END, START, StateGraph

    GREETING = os.environ["{var}"]          # set by the project's .env


    class State(TypedDict):
        text: str


    def greet(state: State) -> dict:
        return {{"text": shout(GREETING + ", " + state["text"])}}


    builder = StateGraph(State)
    builder.add_node("greet", greet)
    builder.add_edge(START, "greet")
    builder.add_edge("greet", END)
    graph = builder.compile()
"""

FACTORY = """
    from typing import TypedDict

    from tether.graph import END, START, StateGraph


    class State(TypedDict):
        n: int


    def make_graph(config):
        builder = StateGraph(State)
        builder.add_node("double", lambda s: {"n": s["n"] * 2})
        builder.add_edge(START, "double")
        builder.add_edge("double", END)
        return builder                        # a builder: compiled for you
"""


def make_project(root: Path, var: str, **extra: Any) -> Path:
    """A LangGraph project as `langgraph new` lays it out (adapted to tether's imports)."""
    (root / "src" / "agent").mkdir(parents=True)
    (root / "src" / "helpers.py").write_text("def shout(text):\n    return text.upper()\n")
    (root / "src" / "agent" / "graph.py").write_text(textwrap.dedent(GRAPH.format(var=var)))
    (root / "factories.py").write_text(textwrap.dedent(FACTORY))
    (root / ".env").write_text(f"# secrets\nexport {var}='hello from env'\nOTHER=1 # note\n")
    config = {"graphs": {"agent": "./src/agent/graph.py:graph",
                         "doubler": "factories:make_graph"},
              "env": ".env", "dependencies": [".", "./src", "langchain_openai"],
              "python_version": "3.11", "dockerfile_lines": [], **extra}
    (root / "langgraph.json").write_text(json.dumps(config))
    return root / "langgraph.json"


def unique(name: str) -> str:
    return f"TETHER_TEST_{name}_{os.getpid()}_{time.monotonic_ns()}"


def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("tether.server")
    fake.serve = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tether.server", fake)
    return calls


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a project puts on sys.path or in sys.modules is undone after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("helpers", "factories"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_serve_config_serves_every_graph_by_id_with_env_and_dependencies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None) -> None:
    var = unique("GREETING")
    monkeypatch.delenv(var, raising=False)
    config = make_project(tmp_path, var)
    calls = fake_server(monkeypatch)
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--no-auth", "--port", "0"])
    assert result.exit_code == 0, result.output
    graphs = calls[0]["graphs"]
    assert list(graphs) == ["agent", "doubler"]
    assert graphs["agent"].invoke({"text": "ada"}) == {"text": "HELLO FROM ENV, ADA"}
    assert graphs["doubler"].invoke({"n": 21}) == {"n": 42}
    notes = " ".join(result.output.split())
    assert "tether ignores dockerfile_lines, python_version" in notes
    assert "langchain_openai are not installed by tether" in notes
    os.environ.pop(var, None)


def test_serve_finds_langgraph_json_in_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None) -> None:
    var = unique("GREETING")
    make_project(tmp_path, var)
    monkeypatch.setenv(var, "already set")  # the environment wins over the .env file
    monkeypatch.chdir(tmp_path)
    calls = fake_server(monkeypatch)
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert calls[0]["graphs"]["agent"].invoke({"text": "x"}) == {"text": "ALREADY SET, X"}


@pytest.mark.parametrize(("args", "says"), [
    (["serve"], "needs MODULE:GRAPH, or --config"),
    (["serve", "--config", "nope.json"], "cannot read nope.json"),
    (["serve", "mod:graph", "--config", "x.json"], "not both"),
    (["serve", "--config", "BAD", "--name", "x"], "named by their ids"),
    (["worker", "--db", "postgresql://x@127.0.0.1:1/none"], "needs MODULE:GRAPH"),
])
def test_bad_project_arguments_are_usage_errors(args: list[str], says: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BAD").write_text("{}")
    fake_server(monkeypatch)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"graphs": {}}', "'graphs' must map"),
    ('{"graphs": {"a": "no_colon"}}', "is not 'path/file.py:attr'"),
    ('{"graphs": {"a": "m:g"}, "dependencies": "."}', "list of strings"),
    ('{"graphs": {"a": "m:g"}, "env": 3}', "'env' must be"),
    ('{"graphs": {"a": "m:g"}, "env": "missing.env"}', "missing.env"),
    ('{"graphs": {"a": "m:g"}, "store": []}', "'store' must be an object"),
    ('{"graphs": {"a": "m:g"}, "store": {"indx": {}}}', "'store': unknown key(s) indx"),
    ('{"graphs": {"a": "m:g"}, "store": {"index": {"embed": "./e.py:f"}}}',
     "'store.index.dims' must be a positive integer"),
    ('{"graphs": {"a": "m:g"}, "store": {"index": {"dims": 3, "embed": "f"}}}',
     "'store.index.embed' must be"),
    ('{"graphs": {"a": "m:g"}, "store": {"index": {"dims": 3, "embed": "a:b", "fields": "$"}}}',
     "'store.index.fields' must be a list"),
    ('{"graphs": {"a": "m:g"}, "store": {"ttl": {"default_ttl": -1}}}',
     "'store.ttl.default_ttl' must be a positive number"),
    ('{"graphs": {"a": "m:g"}, "store": {"ttl": {"refresh_on_read": "yes"}}}',
     "'store.ttl.refresh_on_read' must be true or false"),
])
def test_a_malformed_langgraph_json_is_refused_by_key(tmp_path: Path, content: str,
                                                      says: str) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text(content)
    with pytest.raises(ProjectError, match=re.escape(says)):
        Project.read(path)


EMBED = """
    WORDS = ("cat", "dog", "tea", "coffee")

    def embed(texts):
        return [[text.count(word) for word in WORDS] + [0.1] for text in texts]
"""
STORE = {"index": {"embed": "./embeddings.py:embed", "dims": 5, "fields": ["text"]},
         "ttl": {"default_ttl": 60, "sweep_interval_minutes": 10}}


def test_serve_gives_the_store_the_projects_index_and_ttl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None) -> None:
    config = make_project(tmp_path, unique("GREETING"), store=STORE)
    (tmp_path / "embeddings.py").write_text(textwrap.dedent(EMBED))
    calls = fake_server(monkeypatch)
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--no-auth", "--port", "0"])
    assert result.exit_code == 0, result.output
    index = calls[0]["store_index"]
    assert index["dims"] == 5 and index["fields"] == ["text"]
    assert index["embed"](["a cat", "tea"]) == [[1, 0, 0, 0, 0.1], [0, 0, 1, 0, 0.1]]
    assert calls[0]["store_ttl"] == STORE["ttl"]
    assert "store" not in result.output  # used, not reported as ignored


@pytest.mark.parametrize(("embed", "says"), [
    ("./embeddings.py:missing", "store.index.embed (./embeddings.py:missing): "
                                "'./embeddings.py' has no attribute 'missing'"),
    ("./nowhere.py:embed", "store.index.embed (./nowhere.py:embed): cannot import"),
    ("openai:text-embedding-3-small", "needs the `langchain` package"),
])
def test_an_embedding_that_does_not_load_is_named(tmp_path: Path, isolated: None, embed: str,
                                                  says: str) -> None:
    if embed.startswith("openai") and importlib.util.find_spec("langchain") is not None:
        pytest.skip("langchain is installed here: the provider form loads")
    (tmp_path / "embeddings.py").write_text(textwrap.dedent(EMBED))
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"a": "m:g"},
                                "store": {"index": {"embed": embed, "dims": 5}}}))
    with pytest.raises(ProjectError, match=re.escape(says)):
        Project.read(path).store_index()


def test_a_graph_that_does_not_load_is_named(tmp_path: Path, isolated: None) -> None:
    (tmp_path / "lg.py").write_text("from langgraph.graph import StateGraph\nx = 1\n"
                                    "graph = StateGraph(dict).compile\n")
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"a": "./lg.py:nothing", "b": "./missing.py:g",
                                           "c": "./lg.py:x"}}))
    project = Project.read(path)
    with pytest.raises(ProjectError, match=r"'a'.*has no attribute 'nothing'"):
        project.load("a")
    with pytest.raises(ProjectError, match=r"'b'.*cannot import"):
        project.load("b")
    with pytest.raises(ProjectError, match=r"'c'.*is a int, not a tether graph"):
        project.load("c")


def test_dotenv_reads_what_env_files_hold() -> None:
    assert dotenv('A=1\n# c\n\nexport B="two words"\nC=\'x=y\'\nD=3 # note\nnoequals\n') == {
        "A": "1", "B": "two words", "C": "x=y", "D": "3"}


def test_worker_config_serves_the_projects_graphs_by_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None) -> None:
    import tether.checkpoint.postgres
    from tether.worker import command

    config = make_project(tmp_path, unique("GREETING"))
    served: list[dict[str, Any]] = []

    class FakeSaver:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def close(self) -> None:
            pass

    async def fake_serve(store: Any, found: Any, options: Any, redis: str | None) -> None:
        served.append(found.graphs)

    monkeypatch.setattr(tether.checkpoint.postgres, "PostgresSaver", FakeSaver)
    monkeypatch.setattr(command, "_serve", fake_serve)
    result = CliRunner().invoke(app, ["worker", "--config", str(config), "--db",
                                      "postgresql://x@127.0.0.1:1/none"])
    assert result.exit_code == 0, result.output
    assert list(served[0]) == ["agent", "doubler"]
    assert served[0]["doubler"].invoke({"n": 2}) == {"n": 4}


def test_tether_serve_in_a_project_directory_answers_over_http(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    import httpx

    var = unique("GREETING")
    make_project(tmp_path, var, store=STORE)
    (tmp_path / "embeddings.py").write_text(textwrap.dedent(EMBED))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TETHER_DB", None)
    env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "serve", "--no-auth", "--port", "0", "--db",
         str(tmp_path / "serve.db")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port, seen = None, []
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the server exited before it listened:\n" + "".join(seen)
            seen.append(line)
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port is not None
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/assistants/doubler", timeout=10).status_code == 200
        response = httpx.post(f"{base}/runs/wait", timeout=30,
                              json={"assistant_id": "agent", "input": {"text": "http"}})
        assert response.status_code == 200, response.text
        assert response.json() == {"text": "HELLO FROM ENV, HTTP"}
        for key, text in (("pets", "a cat and a dog"), ("drinks", "tea or coffee")):
            put = httpx.put(f"{base}/store/items", timeout=10, json={
                "namespace": ["docs"], "key": key, "value": {"text": text}})
            assert put.status_code == 204, put.text
        found = httpx.post(f"{base}/store/items/search", timeout=10,
                           json={"namespace_prefix": ["docs"], "query": "my tea"}).json()
        # Ranked by the project's embedding function (langgraph.json's store.index).
        assert [i["key"] for i in found["items"]] == ["drinks", "pets"]
        assert found["items"][0]["score"] > found["items"][1]["score"]
        assert any("tether ignores dockerfile_lines, python_version" in s for s in seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
