"""The JSON Schemas of a compiled graph (`get_input_jsonschema`, `get_output_jsonschema`,
`get_context_jsonschema`) and its subgraphs (`get_subgraphs`, `aget_subgraphs`): the same graph
built with LangGraph and with tether answers the same."""

from __future__ import annotations

import dataclasses
import operator
import sys
from collections.abc import Callable
from typing import Annotated, Any, NotRequired, Optional

import pydantic
import pytest
from typing_extensions import TypedDict

from ._support import Lib, load


class Reduced(TypedDict):
    """What the planner knows."""

    steps: Annotated[list[str], operator.add]
    notes: Annotated[list, operator.add]
    topic: str
    draft: NotRequired[str]


@dataclasses.dataclass
class DataState:
    topic: str
    steps: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)
    score: float = 0.5
    draft: Optional[str] = None  # noqa: UP045 - LangGraph reads typing.Optional too
    copy: int | None = None  # a name pydantic keeps for itself
    _seen: int = 0


class ModelState(pydantic.BaseModel):
    """A pydantic state."""

    topic: str
    steps: Annotated[list[str], operator.add] = pydantic.Field(default_factory=list)
    score: float = pydantic.Field(0.5, description="how good")


class Question(TypedDict):
    topic: str


class Answer(TypedDict):
    steps: list[str]


@dataclasses.dataclass
class DataQuestion:
    topic: str = "news"


class UserContext(TypedDict):
    user_id: str
    locale: NotRequired[str]


@dataclasses.dataclass
class DataContext:
    model: str = "small"
    temperature: float = 0.0


class ModelContext(pydantic.BaseModel):
    model: str = "small"


def _messages_subclass(lib: Lib) -> Any:
    class Chat(lib.MessagesState):  # type: ignore[name-defined,misc]
        summary: str

    return Chat


STATES: dict[str, Callable[[Lib], tuple[Any, dict[str, Any]]]] = {
    "typeddict_with_reducers": lambda lib: (Reduced, {}),
    "messages_state": lambda lib: (lib.MessagesState, {}),
    "messages_state_subclass": lambda lib: (_messages_subclass(lib), {}),
    "pydantic": lambda lib: (ModelState, {}),
    "dataclass": lambda lib: (DataState, {}),
    "input_and_output_schemas": lambda lib: (Reduced, {"input_schema": Question,
                                                       "output_schema": Answer}),
    "dataclass_with_input_schema": lambda lib: (DataState, {"input_schema": DataQuestion}),
    "typeddict_context": lambda lib: (Reduced, {"context_schema": UserContext}),
    "dataclass_context": lambda lib: (DataState, {"context_schema": DataContext}),
    "pydantic_context": lambda lib: (ModelState, {"context_schema": ModelContext}),
}


def noop(state: Any) -> dict[str, Any]:
    return {}


def build(lib: Lib, state: Any, name: str | None = None, **schemas: Any) -> Any:
    builder = lib.StateGraph(state, **schemas)
    builder.add_node("work", noop)
    builder.add_edge(lib.START, "work")
    return builder.compile(**({"name": name} if name else {}))


def schemas_of(graph: Any) -> dict[str, Any]:
    return {"input": graph.get_input_jsonschema(), "output": graph.get_output_jsonschema(),
            "context": graph.get_context_jsonschema()}


@pytest.fixture
def tether() -> Lib:
    return load("tether")


@pytest.mark.parametrize("case", list(STATES))
def test_input_output_and_context_schemas_are_langgraphs(lg: Lib, tether: Lib,
                                                         case: str) -> None:
    expected = schemas_of(build(lg, STATES[case](lg)[0], **STATES[case](lg)[1]))
    got = schemas_of(build(tether, STATES[case](tether)[0], **STATES[case](tether)[1]))
    assert got == expected
    assert got["input"]["properties"]  # a real schema, not two empty ones


@pytest.mark.parametrize("name", ["planner", "Planner"])
def test_a_dataclass_schema_is_titled_after_the_compiled_name(lg: Lib, tether: Lib,
                                                             name: str) -> None:
    expected = schemas_of(build(lg, DataState, name=name))
    got = schemas_of(build(tether, DataState, name=name))
    assert got == expected
    assert got["input"]["title"] == {"planner": "planner_input", "Planner": "PlannerInput"}[name]


def test_the_messages_state_schema_lists_langchains_messages(tether: Lib) -> None:
    schema = build(tether, tether.MessagesState).get_input_jsonschema()
    assert schema["title"] == "MessagesState" and "description" not in schema
    assert schema["required"] == ["messages"]
    assert {"AIMessage", "HumanMessage", "ToolMessage"} <= set(schema["$defs"])


def test_without_a_context_schema_the_context_schema_is_none(lg: Lib, tether: Lib) -> None:
    assert build(lg, Reduced).get_context_jsonschema() is None
    assert build(tether, Reduced).get_context_jsonschema() is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="pydantic takes typing's TypedDict")
def test_a_typing_typeddict_state_is_refused_by_pydantic_as_in_langgraph(lg: Lib,
                                                                         tether: Lib) -> None:
    import typing

    class Plain(typing.TypedDict):
        topic: str

    for lib in (lg, tether):
        with pytest.raises(pydantic.PydanticUserError, match=r"typing_extensions\.TypedDict"):
            build(lib, Plain).get_input_jsonschema()


# -- subgraphs ----------------------------------------------------------------------------


class Shared(TypedDict):
    topic: str


def nest(lib: Lib) -> dict[str, Any]:
    """`top` has `plan` (a subgraph added as a node, itself holding `search`, a subgraph) and
    `review` (a node whose code invokes `critic`), and `write`, a plain node."""

    def graph(name: str, nodes: dict[str, Any]) -> Any:
        builder = lib.StateGraph(Shared)
        previous = lib.START
        for node, action in nodes.items():
            builder.add_node(node, action)
            builder.add_edge(previous, node)
            previous = node
        return builder.compile(name=name)

    lookup = graph("lookup", {"fetch": noop})
    search = graph("search", {"lookup": lookup, "rank": noop})
    critic = graph("critic", {"judge": noop})

    def review(state: Shared) -> Any:
        return critic.invoke(state)

    return {"top": graph("top", {"write": noop, "plan": search, "review": review}),
            "search": search, "lookup": lookup, "critic": critic}


QUERIES = [(None, False), (None, True), ("plan", False), ("plan", True), ("plan|lookup", False),
           ("plan|lookup", True), ("review", False), ("nope", True), ("pla", True),
           ("write", True)]


def _names(found: Any) -> list[tuple[str, str]]:
    return [(namespace, graph.name) for namespace, graph in found]


@pytest.mark.parametrize(("namespace", "recurse"), QUERIES)
def test_get_subgraphs_yields_what_langgraph_yields(lg: Lib, tether: Lib, namespace: str | None,
                                                    recurse: bool) -> None:
    expected = _names(nest(lg)["top"].get_subgraphs(namespace=namespace, recurse=recurse))
    graphs = nest(tether)
    found = list(graphs["top"].get_subgraphs(namespace=namespace, recurse=recurse))
    assert _names(found) == expected
    assert all(graph is graphs[graph.name] for _, graph in found)


@pytest.mark.anyio
async def test_aget_subgraphs_yields_what_get_subgraphs_does(lg: Lib, tether: Lib) -> None:
    expected = _names(nest(lg)["top"].get_subgraphs(recurse=True))
    top = nest(tether)["top"]
    got = _names([pair async for pair in top.aget_subgraphs(recurse=True)])
    assert got == expected == [("plan", "search"), ("plan|lookup", "lookup"),
                               ("review", "critic")]
    assert _names([p async for p in top.aget_subgraphs(namespace="plan|lookup", recurse=True)]
                  ) == [("plan|lookup", "lookup")]


def test_the_subgraphs_schemas_are_langgraphs(lg: Lib, tether: Lib) -> None:
    expected = {ns: schemas_of(g) for ns, g in nest(lg)["top"].get_subgraphs(recurse=True)}
    got = {ns: schemas_of(g) for ns, g in nest(tether)["top"].get_subgraphs(recurse=True)}
    assert got == expected and len(got) == 3

