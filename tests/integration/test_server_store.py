"""The long-term store of a served graph: the server gives graphs compiled without a store its
own, in the same database as the runs, and serves it on the Agent Server's `/store` routes
(`client.store` of `langgraph-sdk`); a graph compiled with a store keeps it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tether.checkpoint.sqlite import SqliteSaver
from tether.server import create_app
from tether.store.memory import InMemoryStore
from tether.store.sqlite import SqliteStore

from .server_graphs import KEYS, LiveServer, memo

pytestmark = pytest.mark.anyio


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "server.db"


@pytest.fixture
def own_store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def live(db: Path, own_store: InMemoryStore) -> Iterator[LiveServer]:
    saver = SqliteSaver(db)
    try:
        app = create_app({"memo": memo(), "private": memo(own_store)}, saver, api_keys=KEYS)
        with LiveServer(app) as server:
            yield server
    finally:
        saver.close()


@pytest.fixture
async def client(live: LiveServer) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=live.url, api_key="key-a") as made:
        yield made


async def test_a_served_graph_reads_and_writes_the_servers_store_in_the_same_file(
        client: LangGraphClient, db: Path) -> None:
    await client.store.put_item(["tenant-a", "profile"], "me", {"name": "Ada"})
    done = await client.runs.wait(None, "memo", input={"topic": "tides"})
    assert done["greeting"] == "hello Ada, noted: tides"

    item = await client.store.get_item(["tenant-a", "memories"], "tides")
    assert item["value"] == {"topic": "tides"} and item["namespace"] == ["tenant-a", "memories"]
    # The same SQLite file as the runs holds the memories, for any process that opens it.
    with SqliteStore(db) as store:
        found = store.get(("tenant-a", "memories"), "tides")
        assert found is not None and found.value == {"topic": "tides"}


async def test_a_graph_compiled_with_a_store_keeps_it(client: LangGraphClient,
                                                      own_store: InMemoryStore) -> None:
    own_store.put(("tenant-a", "profile"), "me", {"name": "Grace"})
    done = await client.runs.wait(None, "private", input={"topic": "chess"})
    assert done["greeting"] == "hello Grace, noted: chess"
    assert own_store.get(("tenant-a", "memories"), "chess") is not None
    assert await client.store.get_item(["tenant-a", "memories"], "chess") is None


async def test_the_store_routes_put_get_search_list_and_delete(client: LangGraphClient) -> None:
    ns = ["tenant-a", "notes"]
    await client.store.put_item(ns, "a", {"kind": "book", "n": 1})
    await client.store.put_item(ns, "b", {"kind": "film", "n": 2})
    await client.store.put_item(["tenant-a", "notes", "old"], "c", {"kind": "book", "n": 3},
                                ttl=5)

    item = await client.store.get_item(ns, "a")
    assert item["key"] == "a" and item["value"] == {"kind": "book", "n": 1}
    assert item["created_at"] and item["updated_at"]
    found = await client.store.search_items(ns, filter={"kind": "book"})
    assert [i["key"] for i in found["items"]] == ["a", "c"]
    paged = await client.store.search_items(ns, limit=1, offset=1)
    assert [i["key"] for i in paged["items"]] == ["b"]
    listed = await client.store.list_namespaces(prefix=["tenant-a"])
    assert listed["namespaces"] == [["tenant-a", "notes"], ["tenant-a", "notes", "old"]]
    shallow = await client.store.list_namespaces(prefix=["tenant-a"], max_depth=2)
    assert shallow["namespaces"] == [["tenant-a", "notes"]]

    await client.store.delete_item(ns, "a")
    assert await client.store.get_item(ns, "a") is None
    await client.store.delete_item(ns, "never-there")  # deleting nothing is fine


async def test_a_tenant_reaches_only_namespaces_under_its_name(live: LiveServer) -> None:
    async with get_client(url=live.url, api_key="key-a") as a, \
            get_client(url=live.url, api_key="key-b") as b:
        await a.store.put_item(["tenant-a", "notes"], "x", {"secret": True})
        await b.store.put_item(["tenant-b", "notes"], "y", {"secret": False})
        # Search and listing default to the caller's own namespaces.
        assert [i["key"] for i in (await b.store.search_items([]))["items"]] == ["y"]
        assert (await b.store.list_namespaces())["namespaces"] == [["tenant-b", "notes"]]
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": "key-b"}) as http:
        answers = [
            await http.get("/store/items", params={"namespace": "tenant-a.notes", "key": "x"}),
            await http.put("/store/items", json={"namespace": ["tenant-a", "notes"],
                                                 "key": "x", "value": {"secret": "gone"}}),
            await http.request("DELETE", "/store/items",
                               json={"namespace": ["tenant-a", "notes"], "key": "x"}),
            await http.post("/store/items/search", json={"namespace_prefix": ["tenant-a"]}),
            await http.post("/store/namespaces", json={"prefix": ["*"]}),
        ]
    assert [r.status_code for r in answers] == [403] * 5
    assert "tenant-b" in answers[0].json()["detail"]
    async with get_client(url=live.url, api_key="key-a") as a:
        kept = await a.store.get_item(["tenant-a", "notes"], "x")
        assert kept["value"] == {"secret": True}


async def test_bad_store_requests_are_422_naming_the_problem(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": "key-a"}) as http:
        bad_label = await http.put("/store/items", json={
            "namespace": ["tenant-a", ""], "key": "k", "value": {}})
        not_a_dict = await http.put("/store/items", json={
            "namespace": ["tenant-a"], "key": "k", "value": [1, 2]})
        typo = await http.post("/store/items/search", json={"namespace_prefx": ["tenant-a"]})
        empty_key = await http.put("/store/items", json={
            "namespace": ["tenant-a"], "key": "", "value": {}})
    assert [r.status_code for r in (bad_label, not_a_dict, typo, empty_key)] == [422] * 4
    assert "label" in bad_label.text.lower()
    assert "namespace_prefx" in typo.text


async def test_without_auth_every_namespace_is_reachable(db: Path) -> None:
    saver = SqliteSaver(db)
    try:
        with LiveServer(create_app({"memo": memo()}, saver, auth=False)) as server:
            async with get_client(url=server.url) as client:
                await client.store.put_item(["profile-less"], "k", {"v": 1})
                done = await client.runs.wait(None, "memo", input={"topic": "sails"})
                assert done["greeting"] == "hello stranger, noted: sails"
                listed = await client.store.list_namespaces()
                assert listed["namespaces"] == [["local", "memories"], ["profile-less"]]
    finally:
        saver.close()
