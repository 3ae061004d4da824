"""The assistant routes `langgraph-sdk` calls beyond search and get: `get_schemas`,
`get_subgraphs`, `count`, and the writes tether refuses (one assistant per served graph) — over
HTTP to a real uvicorn server, answers compared with the Agent Server's for the same graphs."""

from __future__ import annotations

import importlib
import json
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NotRequired

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError, NotFoundError
from typing_extensions import TypedDict

from tether.checkpoint.sqlite import SqliteSaver
from tether.server import create_app
from tether.server.wire import assistant_id_of

from .server_graphs import KEYS, LiveServer

pytestmark = pytest.mark.anyio

AGENT_SERVER: dict[str, Any] = json.loads(
    (Path(__file__).parent / "agent_server_schemas.json").read_text())
"""What the Agent Server answers for the graphs below (see its `_about`)."""


class Plan(TypedDict):
    """A plan being written."""

    topic: str
    steps: Annotated[list[str], operator.add]
    draft: NotRequired[str]


class Question(TypedDict):
    topic: str


class Answer(TypedDict):
    steps: list[str]


class Caller(TypedDict):
    user_id: str
    thread_id: NotRequired[str]


class Opaque:
    """A type pydantic cannot describe."""


class Held(TypedDict):
    handle: Opaque
    count: int


def step(state: Any) -> dict[str, Any]:
    return {"steps": ["x"]}


def graphs(library: str = "tether") -> dict[str, Any]:
    """`planner` (input, output and context schemas; `research`, a subgraph holding `lookup`)
    and `held` (a key of a type pydantic cannot describe), built with `library`."""
    graph = importlib.import_module(f"{library}.graph")

    def chain(state: Any, name: str | None, nodes: dict[str, Any], **schemas: Any) -> Any:
        builder = graph.StateGraph(state, **schemas)
        previous = graph.START
        for node, action in nodes.items():
            builder.add_node(node, action)
            builder.add_edge(previous, node)
            previous = node
        return builder.compile(name=name) if name else builder.compile()

    lookup = chain(Plan, "lookup", {"fetch": step})
    research = chain(Plan, "research", {"lookup": lookup})
    planner = chain(Plan, None, {"research": research, "write": step}, input_schema=Question,
                    output_schema=Answer, context_schema=Caller)
    return {"planner": planner, "held": chain(Held, None, {"keep": step})}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    store = SqliteSaver(tmp_path / "assistants.db")
    try:
        with LiveServer(create_app(graphs(), store, api_keys=KEYS)) as server:
            yield server
    finally:
        store.close()


@pytest.fixture
async def client(live: LiveServer) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=live.url, api_key="key-a") as made:
        yield made


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": "key-a"}) as made:
        yield made


async def test_schemas_are_the_agent_servers_by_graph_id_or_assistant_id(
        client: LangGraphClient) -> None:
    for key in ("planner", assistant_id_of("planner")):
        assert await client.assistants.get_schemas(key) == {"graph_id": "planner",
                                                            **AGENT_SERVER["planner"]}
    schemas = await client.assistants.get_schemas("planner")
    assert list(schemas["input_schema"]["properties"]) == ["topic"]
    assert list(schemas["output_schema"]["properties"]) == ["steps"]
    assert schemas["state_schema"]["title"] == "planner_state"
    assert schemas["context_schema"]["required"] == ["user_id"]
    assert "thread_id" not in schemas["config_schema"]["properties"]  # the engine's key


async def test_schemas_are_those_of_langgraphs_graph(client: LangGraphClient) -> None:
    reference = graphs("langgraph")["planner"]
    schemas = await client.assistants.get_schemas("planner")
    assert schemas["input_schema"] == reference.get_input_jsonschema()
    assert schemas["output_schema"] == reference.get_output_jsonschema()
    assert schemas["context_schema"] == reference.get_context_jsonschema()


async def test_a_schema_that_cannot_be_made_is_none_and_its_state_key_any(
        client: LangGraphClient) -> None:
    schemas = await client.assistants.get_schemas("held")
    assert schemas == {"graph_id": "held", **AGENT_SERVER["held"]}
    assert schemas["input_schema"] is None and schemas["output_schema"] is None
    assert schemas["context_schema"] is None and schemas["config_schema"] == {}
    assert schemas["state_schema"]["properties"]["handle"] == {"default": None,
                                                               "title": "Handle"}


async def test_subgraphs_by_namespace_and_recursion_are_the_agent_servers(
        client: LangGraphClient) -> None:
    direct = await client.assistants.get_subgraphs("planner")
    assert direct == AGENT_SERVER["planner_subgraphs"] and list(direct) == ["research"]
    deep = await client.assistants.get_subgraphs("planner", recurse=True)
    assert deep == AGENT_SERVER["planner_subgraphs_recursive"]
    assert list(deep) == ["research", "research|lookup"]
    assert deep["research|lookup"]["state_schema"]["title"] == "lookup_state"
    assert await client.assistants.get_subgraphs("planner", namespace="research") == direct
    nested = await client.assistants.get_subgraphs("planner", namespace="research|lookup",
                                                   recurse=True)
    assert nested == {"research|lookup": deep["research|lookup"]}
    # A nested namespace needs `recurse`, as in LangGraph; an unknown one finds nothing.
    assert await client.assistants.get_subgraphs("planner", namespace="research|lookup") == {}
    assert await client.assistants.get_subgraphs("planner", namespace="nope",
                                                 recurse=True) == {}
    assert await client.assistants.get_subgraphs("held", recurse=True) == {}


async def test_count_counts_what_search_finds(client: LangGraphClient) -> None:
    filters: list[dict[str, Any]] = [
        {}, {"graph_id": "planner"}, {"name": "PLAN"}, {"name": "e"},
        {"metadata": {"created_by": "system"}}, {"metadata": {"created_by": "user"}},
        {"graph_id": "nope"}, {"graph_id": "held", "name": "plan"},
    ]
    counts = [await client.assistants.count(**f) for f in filters]
    assert counts == [2, 1, 1, 2, 2, 0, 0, 0]
    for given, count in zip(filters, counts, strict=True):
        assert count == len(await client.assistants.search(**given, limit=100))


@pytest.mark.parametrize("call", ["get_schemas", "get_subgraphs", "update", "delete",
                                  "get_versions", "set_latest"])
async def test_an_unknown_assistant_is_a_404_naming_it(client: LangGraphClient,
                                                       call: str) -> None:
    ask: dict[str, Callable[[], Awaitable[Any]]] = {
        "get_schemas": lambda: client.assistants.get_schemas("nope"),
        "get_subgraphs": lambda: client.assistants.get_subgraphs("nope", recurse=True),
        "update": lambda: client.assistants.update("nope", metadata={"a": 1}),
        "delete": lambda: client.assistants.delete("nope"),
        "get_versions": lambda: client.assistants.get_versions("nope"),
        "set_latest": lambda: client.assistants.set_latest("nope", 2),
    }
    with pytest.raises(NotFoundError, match="assistant 'nope' not found"):
        await ask[call]()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/assistants/count", {"graph_ids": "planner"}),
    ("POST", "/assistants/count", {"metadata": 5}),
    ("POST", "/assistants/count", {"name": ["planner"]}),
    ("GET", "/assistants/planner/subgraphs?recurse=maybe", None),
    ("GET", "/assistants/planner/subgraphs/research?recurse=2", None),
])
async def test_a_bad_count_body_or_recurse_is_a_422_saying_what(
        http: httpx.AsyncClient, method: str, path: str, body: Any) -> None:
    answer = await http.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail and all(item["msg"] for item in detail)


async def test_assistant_writes_are_refused_with_the_reason(client: LangGraphClient) -> None:
    before = await client.assistants.search()
    writes: dict[str, Callable[[], Awaitable[Any]]] = {
        "created": lambda: client.assistants.create("planner", assistant_id="mine",
                                                    if_exists="do_nothing", name="mine"),
        "changed": lambda: client.assistants.update("planner", metadata={"owner": "me"}),
        "deleted": lambda: client.assistants.delete(assistant_id_of("planner")),
    }
    for words, write in writes.items():
        with pytest.raises(APIStatusError) as refused:
            await write()
        assert refused.value.response.status_code == 405
        message = str(refused.value)
        assert "tether serves one assistant per graph" in message and words in message
    assert await client.assistants.search() == before
    assert await client.assistants.count() == 2


async def test_a_refusal_says_which_methods_the_assistant_allows(
        http: httpx.AsyncClient) -> None:
    patched = await http.patch("/assistants/planner", json={"metadata": {}})
    assert patched.status_code == 405 and patched.headers["allow"] == "GET"
    created = await http.post("/assistants", json={"graph_id": "planner"})
    assert created.status_code == 405 and created.headers["allow"] == ""
    assert "cannot be created" in created.json()["detail"]


async def test_an_assistant_has_one_version_and_it_is_the_latest(
        client: LangGraphClient) -> None:
    (planner,) = await client.assistants.search(graph_id="planner")
    assert await client.assistants.get_versions("planner") == [planner]
    assert await client.assistants.get_versions(planner["assistant_id"],
                                                metadata={"created_by": "system"}) == [planner]
    assert await client.assistants.get_versions("planner", metadata={"owner": "x"}) == []
    assert await client.assistants.get_versions("planner", offset=1) == []
    assert await client.assistants.set_latest("planner", 1) == planner
    with pytest.raises(NotFoundError, match="has no version 2"):
        await client.assistants.set_latest("planner", 2)
