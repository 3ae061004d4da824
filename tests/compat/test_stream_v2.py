"""`stream(..., version="v2")`: every chunk a `{"type", "ns", "data"}` part (values parts with
their `interrupts` apart and coerced to a dataclass or pydantic state); `invoke(...,
version="v2")` returns a `GraphOutput`."""

import dataclasses
import operator
from typing import Annotated, Any, TypedDict

import pydantic
import pytest

from ._support import Lib, normalise, thread


@dataclasses.dataclass
class Data:
    x: int = 0
    log: Annotated[list, operator.add] = dataclasses.field(default_factory=list)


class Model(pydantic.BaseModel):
    x: int = 0
    log: Annotated[list, operator.add] = pydantic.Field(default_factory=list)


class Plain(TypedDict):
    x: int
    log: Annotated[list, operator.add]


def build(lib: Lib, schema: Any) -> Any:
    """`bump` then `ask`, which pauses for an answer."""

    def bump(state: Any) -> dict:
        x = state["x"] if isinstance(state, dict) else state.x
        lib.get_stream_writer()({"bumping": x})
        return {"x": x + 1, "log": ["bump"]}

    def ask(state: Any) -> dict:
        return {"log": [lib.interrupt("why?")]}

    builder = lib.StateGraph(schema)
    builder.add_node("bump", bump)
    builder.add_node("ask", ask)
    builder.add_edge(lib.START, "bump")
    builder.add_edge("bump", "ask")
    return builder.compile(checkpointer=lib.InMemorySaver())


def _part(part: dict) -> Any:
    """A v2 part without ids and timestamps; state objects as (class name, fields); checkpoint
    payloads reduced to what both libraries record alike (as in test_streaming)."""
    assert isinstance(part, dict)
    view = {key: _plain(value) for key, value in part.items()}
    data = view["data"]
    if part["type"] == "debug" and data["type"] == "checkpoint":
        view["data"] = {**data, "payload": _checkpoint(data["payload"])}
    elif part["type"] == "checkpoints":
        view["data"] = _checkpoint(data)
    return normalise(view)


def _checkpoint(payload: dict) -> tuple:
    return (payload["values"], payload["metadata"]["source"], payload["metadata"]["step"],
            list(payload["next"]), [task["name"] for task in payload["tasks"]])


def _plain(value: Any) -> Any:
    if type(value).__name__ == "Interrupt":
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, dataclasses.asdict(value))
    if isinstance(value, pydantic.BaseModel):
        return (type(value).__name__, value.model_dump())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(_plain(v) for v in value)
    return value


SCHEMAS = {"dataclass": Data, "pydantic": Model, "typeddict": Plain}
MODES = ["values", "updates", "custom", ["values", "updates", "custom"],
         ["checkpoints", "tasks"], "debug"]


def _input(schema: Any) -> Any:
    return {"x": 0, "log": []} if schema is Plain else schema()


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
@pytest.mark.parametrize("mode", MODES, ids=str)
def test_v2_stream_parts_match(lib: Lib, lg: Lib, schema: str, mode: Any) -> None:
    def run(library: Lib) -> list:
        graph = build(library, SCHEMAS[schema])
        parts = graph.stream(_input(SCHEMAS[schema]), thread("t"), stream_mode=mode,
                             version="v2")
        return [_part(part) for part in parts]

    expected = run(lg)
    assert all(set(part) >= {"type", "ns", "data"} for part in expected)
    if mode == "values":
        assert expected[-1]["interrupts"] == (("Interrupt", "why?"),)
    assert run(lib) == expected


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_v2_invoke_returns_graph_output(lib: Lib, lg: Lib, schema: str) -> None:
    def run(library: Lib) -> list:
        graph = build(library, SCHEMAS[schema])
        paused = graph.invoke(_input(SCHEMAS[schema]), thread("t"), version="v2")
        done = graph.invoke(library.Command(resume="because"), thread("t"), version="v2")
        return [(type(out).__name__, _plain(out.value), normalise(out.interrupts))
                for out in (paused, done)]

    expected = run(lg)
    assert expected[0][0] == "GraphOutput"
    assert expected[0][2] == (("Interrupt", "why?"),)
    assert expected[1][2] == ()
    assert run(lib) == expected


def test_v2_invoke_with_another_mode_returns_its_parts(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build(library, Plain)
        parts = graph.invoke({"x": 0, "log": []}, thread("t"), version="v2",
                             stream_mode="updates")
        return [_part(part) for part in parts]

    expected = run(lg)
    assert expected[0] == {"type": "updates", "ns": (), "data": {"bump": {"x": 1,
                                                                         "log": ["bump"]}}}
    assert run(lib) == expected


def test_v2_stream_of_a_subgraph_names_its_namespace(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        class Log(TypedDict):
            log: Annotated[list, operator.add]

        child = library.StateGraph(Log)
        child.add_node("inner", lambda _s: {"log": ["inner"]})
        child.add_edge(library.START, "inner")
        builder = library.StateGraph(Log)
        builder.add_node("child", child.compile())
        builder.add_edge(library.START, "child")
        graph = builder.compile()
        parts = graph.stream({"log": []}, stream_mode="updates", subgraphs=True, version="v2")
        return [(part["type"], tuple(p.split(":")[0] for p in part["ns"]), part["data"])
                for part in parts]

    expected = run(lg)
    assert [ns for _t, ns, _d in expected] == [("child",), ()]
    assert run(lib) == expected


def test_v2_graph_output_item_access_is_deprecated(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        out = build(library, Plain).invoke({"x": 0, "log": []}, thread("t"), version="v2")
        with pytest.warns(DeprecationWarning):
            first = out["x"]
        with pytest.warns(DeprecationWarning):
            questions = normalise(out["__interrupt__"])
        return [first, questions]

    expected = run(lg)
    assert expected == [1, (("Interrupt", "why?"),)]
    assert run(lib) == expected
