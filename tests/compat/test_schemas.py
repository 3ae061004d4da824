"""State schemas (TypedDict, dataclass, pydantic), input/output schemas, what updates may hold."""

import dataclasses
import operator
from typing import Annotated, TypedDict

import pydantic
import pytest

from tether.errors import StrictnessWarning

from ._support import Lib, outcome


class TypedState(TypedDict):
    name: str
    count: int
    tags: Annotated[list[str], operator.add]


@dataclasses.dataclass
class DataState:
    name: str
    count: int = 0
    tags: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


class ModelState(pydantic.BaseModel):
    name: str
    count: int = 0
    tags: Annotated[list[str], operator.add] = pydantic.Field(default_factory=list)


SCHEMAS = {"typeddict": TypedState, "dataclass": DataState, "pydantic": ModelState}


def _as_dict(state) -> dict:
    if isinstance(state, pydantic.BaseModel):
        return state.model_dump()
    if dataclasses.is_dataclass(state):
        return dataclasses.asdict(state)
    return dict(state)


def _get(state, key: str):
    return state[key] if isinstance(state, dict) else getattr(state, key)


def build_schema_graph(lib: Lib, schema: type, seen: list):
    """Two steps that read attributes or keys as the schema dictates and record what they saw."""

    def first(state) -> dict:
        seen.append((type(state).__name__, _as_dict(state)))
        return {"count": _get(state, "count") + 1, "tags": [f"first:{_get(state, 'name')}"]}

    def second(state) -> dict:
        seen.append((type(state).__name__, _as_dict(state)))
        return {"tags": [f"second:{_get(state, 'count')}"]}

    builder = lib.StateGraph(schema)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(lib.START, "first")
    builder.add_edge("first", "second")
    return builder.compile()


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_state_schema_kinds_give_same_output_and_node_views(lib: Lib, lg: Lib, kind: str) -> None:
    schema = SCHEMAS[kind]

    def run(library: Lib) -> tuple:
        seen: list = []
        result = build_schema_graph(library, schema, seen).invoke(
            {"name": "n", "count": 2, "tags": ["in"]}
        )
        return result, seen

    expected = run(lg)
    assert expected[0] == {"name": "n", "count": 3, "tags": ["in", "first:n", "second:3"]}
    assert expected[1][0][0] == ("dict" if kind == "typeddict" else schema.__name__)
    assert run(lib) == expected


@pytest.mark.parametrize("kind", ["dataclass", "pydantic"])
def test_schema_defaults_fill_keys_missing_from_input(lib: Lib, lg: Lib, kind: str) -> None:
    def run(library: Lib) -> tuple:
        seen: list = []
        result = build_schema_graph(library, SCHEMAS[kind], seen).invoke({"name": "d"})
        return result, seen

    expected = run(lg)
    assert expected[1][0] == (SCHEMAS[kind].__name__, {"name": "d", "count": 0, "tags": []})
    assert run(lib) == expected


@pytest.mark.parametrize("kind", ["dataclass", "pydantic"])
def test_schema_instance_is_accepted_as_input(lib: Lib, lg: Lib, kind: str) -> None:
    schema = SCHEMAS[kind]

    def run(library: Lib) -> dict:
        return build_schema_graph(library, schema, []).invoke(schema(name="i", count=5))

    expected = run(lg)
    assert expected == {"name": "i", "count": 6, "tags": ["first:i", "second:6"]}
    assert run(lib) == expected


@pytest.mark.parametrize(
    ("kind", "bad_input"),
    [("pydantic", {"name": 5}), ("pydantic", {"count": 1}), ("dataclass", {"count": 1})],
)
def test_invalid_input_for_schema_raises_the_same_error(
    lib: Lib, lg: Lib, kind: str, bad_input: dict
) -> None:
    def run(library: Lib) -> tuple:
        return outcome(lambda: build_schema_graph(library, SCHEMAS[kind], []).invoke(bad_input))

    expected = run(lg)
    assert expected == ("raised", "ValidationError" if kind == "pydantic" else "TypeError")
    assert run(lib) == expected


def test_pydantic_node_output_is_stored_as_written_and_coerced_when_read(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        seen: list = []
        builder = library.StateGraph(ModelState)
        builder.add_node("write", lambda _s: {"count": "7"})
        builder.add_node("read", lambda s: seen.append(s.count) or {})
        builder.add_edge(library.START, "write")
        builder.add_edge("write", "read")
        return builder.compile().invoke({"name": "p"}), seen

    expected = run(lg)
    assert expected == ({"name": "p", "count": "7", "tags": []}, [7])
    assert run(lib) == expected


class Question(TypedDict):
    question: str


class Answer(TypedDict):
    answer: str


class Overall(TypedDict):
    question: str
    answer: str
    notes: str


def build_io_graph(lib: Lib, seen: list):
    def think(state: Overall) -> dict:
        seen.append(dict(state))
        return {"notes": f"notes on {state['question']}", "answer": "draft"}

    def respond(state: Overall) -> dict:
        seen.append(dict(state))
        return {"answer": state["notes"].upper()}

    builder = lib.StateGraph(Overall, input_schema=Question, output_schema=Answer)
    builder.add_node("think", think)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "think")
    builder.add_edge("think", "respond")
    builder.add_edge("respond", lib.END)
    return builder.compile()


@pytest.mark.parametrize(
    "given",
    [{"question": "why"}, {"question": "why", "notes": "smuggled", "answer": "early", "bogus": 1}],
)
def test_input_schema_drops_other_keys_and_output_schema_filters_result(
    lib: Lib, lg: Lib, given: dict
) -> None:
    def run(library: Lib) -> tuple:
        seen: list = []
        return build_io_graph(library, seen).invoke(given), seen

    expected = run(lg)
    assert expected == (
        {"answer": "NOTES ON WHY"},
        [
            {"question": "why"},
            {"question": "why", "notes": "notes on why", "answer": "draft"},
        ],
    )
    assert run(lib) == expected


def test_values_stream_with_output_schema_matches(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        return list(build_io_graph(library, []).stream({"question": "q"}, stream_mode="values"))

    expected = run(lg)
    assert len(expected) == 3
    assert run(lib) == expected


class Small(TypedDict):
    a: int


@pytest.mark.parametrize(
    ("returned", "label"),
    [
        ({"a": 1, "unknown": 2}, "known and unknown keys"),
        ({"unknown": 2}, "only unknown keys"),
        (None, "None"),
        ({}, "empty dict"),
        (5, "an int"),
        ("a", "a string"),
        ([("a", 3)], "a list of pairs"),
    ],
)
def test_node_return_values_apply_or_raise_the_same_way(
    lib: Lib, lg: Lib, returned: object, label: str
) -> None:
    def run(library: Lib, **strict: bool) -> tuple:
        builder = library.StateGraph(Small)
        builder.add_node("node", lambda _s: returned)
        builder.add_edge(library.START, "node")
        return outcome(lambda: builder.compile(**strict).invoke({"a": 0}))

    expected = run(lg)
    if label == "known and unknown keys":
        assert expected == ("ok", {"a": 1})
    if label == "an int":
        assert expected == ("raised", "InvalidUpdateError")
    if lib.name == "tether" and "unknown" in label:
        # The key is dropped as LangGraph drops it, with a warning naming node and key;
        # compile(strict=True) makes it an error.
        with pytest.warns(StrictnessWarning, match="Node 'node' returned unknown state key "
                                                   "'unknown'"):
            assert run(lib) == expected
        assert run(lib, strict=True) == ("raised", "InvalidUpdateError")
    else:
        assert run(lib) == expected


@pytest.mark.parametrize("given", [{}, {"unknown": 1}, {"a": 4, "unknown": 1}])
def test_input_without_known_keys_gives_the_same_output(lib: Lib, lg: Lib, given: dict) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Small)
        builder.add_node("node", lambda _s: {})
        builder.add_edge(library.START, "node")
        return outcome(lambda: builder.compile().invoke(given))

    expected = run(lg)
    if not given:
        assert expected == ("ok", None)
    assert run(lib) == expected


class InputState(TypedDict):
    user_input: str


class OutputState(TypedDict):
    graph_output: str


class OverallState(TypedDict):
    foo: str
    user_input: str
    graph_output: str


class PrivateState(TypedDict):
    bar: str


def build_multiple_schemas(lib: Lib):
    """LangGraph's "multiple schemas" example: a private key declared only by node annotations."""

    def node_1(state: InputState) -> OverallState:
        return {"foo": state["user_input"] + " name"}

    def node_2(state: OverallState) -> PrivateState:
        return {"bar": state["foo"] + " is"}

    def node_3(state: PrivateState) -> OutputState:
        return {"graph_output": state["bar"] + " Lance"}

    builder = lib.StateGraph(OverallState, input_schema=InputState, output_schema=OutputState)
    builder.add_node("node_1", node_1)
    builder.add_node("node_2", node_2)
    builder.add_node("node_3", node_3)
    builder.add_edge(lib.START, "node_1")
    builder.add_edge("node_1", "node_2")
    builder.add_edge("node_2", "node_3")
    builder.add_edge("node_3", lib.END)
    return builder.compile()


def test_private_state_from_node_annotations_reaches_the_next_node(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        graph = build_multiple_schemas(library)
        return graph.invoke({"user_input": "My"}), list(
            graph.stream({"user_input": "My"}, stream_mode="updates")
        )

    expected = run(lg)
    assert expected[0] == {"graph_output": "My name is Lance"}
    assert expected[1][1] == {"node_2": {"bar": "My name is"}}
    assert run(lib) == expected


def test_values_stream_includes_private_keys_declared_by_node_annotations(
    lib: Lib, lg: Lib
) -> None:
    def run(library: Lib) -> list:
        graph = build_multiple_schemas(library)
        return list(graph.stream({"user_input": "My"}, stream_mode="values"))

    expected = run(lg)
    assert expected[2] == {"foo": "My name", "user_input": "My", "bar": "My name is"}
    assert run(lib) == expected


def test_update_state_with_an_unknown_key_is_ignored_like_a_node_update(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Small)
        builder.add_node("node", lambda s: {"a": s["a"] + 1})
        builder.add_edge(library.START, "node")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        config = {"configurable": {"thread_id": "unknown-key"}}
        graph.invoke({"a": 0}, config)
        return outcome(lambda: graph.update_state(config, {"a": 9, "unknown": 1}) and None), (
            graph.get_state(config).values
        )

    expected = run(lg)
    assert expected == (("ok", None), {"a": 9})
    if lib.name == "tether":
        # Dropped like a node's unknown key, with a warning naming it.
        with pytest.warns(StrictnessWarning, match="unknown state key 'unknown'"):
            assert run(lib) == expected
    else:
        assert run(lib) == expected
