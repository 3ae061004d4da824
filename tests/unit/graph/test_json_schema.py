"""A graph's JSON Schemas need pydantic, which tether's core does not depend on: without it,
building and running a graph work, and asking for a schema says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import sys
sys.modules["pydantic"] = None  # as if it were not installed
from typing_extensions import TypedDict
from tether.graph import START, StateGraph

class State(TypedDict):
    topic: str

builder = StateGraph(State)
builder.add_node("work", lambda state: {"topic": state["topic"] + "!"})
builder.add_edge(START, "work")
graph = builder.compile()
print(graph.invoke({"topic": "a"}))
print([name for name, _ in graph.get_subgraphs()])
print(graph.get_context_jsonschema())
for ask in (graph.get_input_jsonschema, graph.get_output_jsonschema):
    try:
        ask()
    except ImportError as exc:
        print("ImportError:", exc)
"""


def test_without_pydantic_a_schema_asked_for_names_what_to_install() -> None:
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                            timeout=60, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["{'topic': 'a!'}", "[]", "None"]
    assert len(lines) == 5
    for line in lines[3:]:
        assert line.startswith("ImportError: ") and "pip install pydantic" in line
