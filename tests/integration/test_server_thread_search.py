"""`POST /threads/search` by what a thread's record does not hold (its status, its values):
the store orders and pages, and the server asks each thread in that order, a page at a time,
until the page asked for is full. Every thread is seen: none is left out for being older than
some number of others, and the order asked for is the store's (also for `ids`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tether.checkpoint.base import ThreadRecord
from tether.checkpoint.memory import InMemorySaver
from tether.server import create_app
from tether.server.routes import threads as route

from .server_graphs import graphs, in_process

pytestmark = pytest.mark.anyio

OLDER_THAN = 10_001
"""How many threads are made after the oldest one (more than any scan window had)."""


@pytest.fixture
def store() -> InMemorySaver:
    return InMemorySaver()


@pytest.fixture
async def http(store: InMemorySaver) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(graphs(), store, auth=False)) as client:
        yield client


async def _search(http: httpx.AsyncClient, **body: Any) -> list[str]:
    answer = await http.post("/threads/search", json=body)
    assert answer.status_code == 200, answer.text
    return [thread["thread_id"] for thread in answer.json()]


async def _counted(http: httpx.AsyncClient, thread_id: str, limit: int) -> None:
    """A thread whose counter ran to `limit` (values `{"count": limit, "limit": limit}`)."""
    assert (await http.post("/threads", json={"thread_id": thread_id})).status_code == 200
    ran = await http.post(f"/threads/{thread_id}/runs/wait", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": limit}})
    assert ran.json() == {"count": limit, "limit": limit}, ran.text


async def _interrupted(http: httpx.AsyncClient, thread_id: str) -> None:
    """A thread whose last run waits for an answer (status `interrupted`)."""
    assert (await http.post("/threads", json={"thread_id": thread_id})).status_code == 200
    ran = await http.post(f"/threads/{thread_id}/runs/wait", json={
        "assistant_id": "approval", "input": {"question": "go?"}})
    assert ran.status_code == 200, ran.text
    assert (await http.get(f"/threads/{thread_id}")).json()["status"] == "interrupted"


async def test_a_thread_older_than_ten_thousand_others_is_found_by_status_and_values(
        http: httpx.AsyncClient, store: InMemorySaver) -> None:
    await _counted(http, "oldest", 2)
    newer = [f"t{i:05d}" for i in range(OLDER_THAN)]
    for thread_id in newer:
        store.put_thread(thread_id, {})
    assert await _search(http, values={"count": 2}) == ["oldest"]
    assert await _search(http, status="idle", sort_order="asc", limit=2) == ["oldest", newer[0]]
    assert await _search(http, status="idle", sort_by="created_at", sort_order="asc",
                         limit=1) == ["oldest"]
    assert await _search(http, ids=["oldest", newer[-1], "nobody"], status="idle") == [
        newer[-1], "oldest"]
    assert await _search(http, ids=["oldest"], values={"count": 2}) == ["oldest"]
    assert await _search(http, values={"count": 3}) == []


ORDERS = [{}, {"sort_order": "asc"}, {"sort_by": "created_at"},
          {"sort_by": "created_at", "sort_order": "asc"}, {"sort_by": "thread_id"},
          {"sort_by": "thread_id", "sort_order": "asc"}]


@pytest.mark.parametrize("order", ORDERS, ids=["default", "oldest-first", "created",
                                               "created-asc", "by-id", "by-id-asc"])
async def test_a_filtered_search_pages_in_the_order_asked_across_the_stores_pages(
        http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        order: dict[str, Any]) -> None:
    # Pages of three threads read two at a time: the matches of a search end and begin
    # inside the store's pages, and the page asked for is cut from them in order.
    monkeypatch.setattr(route, "_SCAN_PAGE", 3)
    monkeypatch.setattr(route, "_SCAN_AT_ONCE", 2)
    for index in range(10):
        if index in (1, 2, 6, 9):
            await _interrupted(http, f"t{index}")
        else:
            await _counted(http, f"t{index}", 1 + index % 2)
    everyone = await _search(http, **order, limit=100)
    assert sorted(everyone) == [f"t{index}" for index in range(10)]
    statuses = {tid: (await http.get(f"/threads/{tid}")).json()["status"] for tid in everyone}
    asked = [tid for tid in everyone if statuses[tid] == "interrupted"]
    assert await _search(http, **order, status="interrupted") == asked
    for limit in (1, 2, 3):
        for offset in range(len(asked) + 1):
            assert await _search(http, **order, status="interrupted", limit=limit,
                                 offset=offset) == asked[offset:offset + limit]
    by_value = [tid for tid in everyone if tid in {"t0", "t4", "t8"}]  # count 1, even index
    assert await _search(http, **order, values={"count": 1}) == by_value
    assert await _search(http, **order, values={"count": 1}, status="idle", offset=1,
                         limit=1) == by_value[1:2]
    assert await _search(http, **order, ids=["t9", "t4", "t0"], values={"count": 1}) == [
        tid for tid in by_value if tid in {"t4", "t0"}]


async def test_a_thread_updated_while_a_search_reads_is_not_answered_twice(
        http: httpx.AsyncClient, store: InMemorySaver, monkeypatch: pytest.MonkeyPatch) -> None:
    # While the server reads the second page, a thread of a later page is updated: it moves
    # to the front (already read), and every thread before it moves one place down, so the
    # next page begins with one the search has answered already. It is answered once.
    monkeypatch.setattr(route, "_SCAN_PAGE", 3)
    for index in range(9):
        store.put_thread(f"t{index}", {})
    newest_first = [f"t{index}" for index in reversed(range(9))]
    read = store.asearch_threads
    pages: list[int] = []

    async def updating(**query: Any) -> list[ThreadRecord]:
        pages.append(query["offset"])
        if len(pages) == 2:
            store.put_thread("t1", {"touched": True})
        return await read(**query)

    monkeypatch.setattr(store, "asearch_threads", updating)
    found = await _search(http, status="idle", limit=100)
    assert pages == [0, 3, 6, 9]
    assert len(found) == len(set(found))
    assert found == [tid for tid in newest_first if tid != "t1"]


async def test_count_counts_what_a_search_finds(http: httpx.AsyncClient,
                                                 store: InMemorySaver) -> None:
    for index in range(4):
        await _counted(http, f"c{index}", 1 + index % 2)
    await _interrupted(http, "asked")
    for index in range(3):
        store.put_thread(f"bare{index}", {"team": "x"})

    async def count(**body: Any) -> int:
        answer = await http.post("/threads/count", json=body)
        assert answer.status_code == 200, answer.text
        found = await _search(http, **body, limit=1000)
        assert answer.json() == len(found), body
        return int(answer.json())

    assert await count() == 8
    assert await count(metadata={"team": "x"}) == 3
    assert await count(status="interrupted") == 1
    assert await count(status="idle") == 7
    assert await count(values={"count": 2}) == 2
    assert await count(values={"count": 2}, status="idle", metadata={"team": "x"}) == 0
    assert (await http.post("/threads/count", json={"ids": ["c1"]})).status_code == 422
    assert (await http.post("/threads/count", json={"status": "gone"})).status_code == 422


async def test_a_search_orders_by_status_or_by_the_states_last_update(
        http: httpx.AsyncClient) -> None:
    await _counted(http, "first", 1)
    await _interrupted(http, "asked")
    await _counted(http, "second", 1)
    assert (await http.post("/threads", json={"thread_id": "empty"})).status_code == 200
    await _counted(http, "third", 2)
    again = await http.post("/threads/first/runs/wait", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 3}})  # its state: the latest
    assert again.status_code == 200, again.text
    shown = {t["thread_id"]: t for t in (await http.post(
        "/threads/search", json={"limit": 100})).json()}
    assert shown["empty"]["state_updated_at"] == shown["empty"]["created_at"]
    for thread_id in ("first", "asked", "second", "third"):
        state = (await http.get(f"/threads/{thread_id}/state")).json()
        assert shown[thread_id]["state_updated_at"] == state["created_at"], thread_id
    by_state = ["first", "third", "empty", "second", "asked"]  # empty: when it was made
    assert await _search(http, sort_by="state_updated_at") == by_state
    assert await _search(http, sort_by="state_updated_at", sort_order="asc") == by_state[::-1]
    assert await _search(http, sort_by="state_updated_at", limit=2, offset=1) == by_state[1:3]
    assert await _search(http, sort_by="state_updated_at", values={"count": 1}) == ["second"]
    # By status: "idle" < "interrupted"; ties keep the latest update first.
    idle = [t for t in await _search(http, limit=100) if t != "asked"]
    assert await _search(http, sort_by="status", sort_order="asc", limit=100) == [
        *idle, "asked"]
    assert await _search(http, sort_by="status", limit=1) == ["asked"]
    assert await _search(http, sort_by="status", status="idle", limit=2, offset=1) == idle[1:3]


async def test_a_search_answers_only_the_fields_selected(http: httpx.AsyncClient) -> None:
    await _counted(http, "t", 2)
    answer = await http.post("/threads/search", json={"select": ["thread_id", "values",
                                                                 "state_updated_at"]})
    assert answer.status_code == 200, answer.text
    ((thread),) = answer.json()
    assert set(thread) == {"thread_id", "values", "state_updated_at"}
    assert thread["thread_id"] == "t" and thread["values"] == {"count": 2, "limit": 2}
    filtered = await http.post("/threads/search", json={"select": ["status"], "status": "idle"})
    assert filtered.json() == [{"status": "idle"}]
    refused = await http.post("/threads/search", json={"select": ["thread_id", "secret"]})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "select", 1]


async def test_a_copied_thread_has_the_history_and_goes_on_from_it(
        http: httpx.AsyncClient) -> None:
    await _counted(http, "src", 2)
    assert (await http.patch("/threads/src", json={"metadata": {"k": 1}})).status_code == 200
    answer = await http.post("/threads/src/copy")
    assert answer.status_code == 200, answer.text
    copy = answer.json()
    assert copy["thread_id"] != "src" and copy["metadata"]["k"] == 1
    assert copy["values"] == {"count": 2, "limit": 2} and copy["status"] == "idle"
    tid = copy["thread_id"]

    async def history(thread_id: str) -> list[tuple[str, Any]]:
        found = (await http.post(f"/threads/{thread_id}/history", json={"limit": 100})).json()
        return [(h["checkpoint_id"], h["values"]) for h in found]

    assert await history(tid) == await history("src")
    assert (await http.get(f"/threads/{tid}/runs")).json() == []
    ran = await http.post(f"/threads/{tid}/runs/wait", json={
        "assistant_id": "counter", "input": {"count": 1, "limit": 4}})
    assert ran.json() == {"count": 4, "limit": 4}, ran.text
    assert (await http.get("/threads/src")).json()["values"] == {"count": 2, "limit": 2}
    assert (await http.delete("/threads/src")).status_code == 204
    assert len(await history(tid)) > 4
    assert (await http.post("/threads/src/copy")).status_code == 404


async def test_a_copy_that_fails_leaves_no_thread(
        http: httpx.AsyncClient, store: InMemorySaver, monkeypatch: pytest.MonkeyPatch) -> None:
    await _counted(http, "src", 1)

    async def failing(source: str, target: str) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "acopy_thread", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        await http.post("/threads/src/copy")
    assert await _search(http, limit=100) == ["src"]


async def test_prune_deletes_the_threads_named_and_stops_their_runs_first(
        http: httpx.AsyncClient, store: InMemorySaver) -> None:
    await _counted(http, "done", 1)
    await _interrupted(http, "asked")
    assert (await http.post("/threads", json={"thread_id": "busy"})).status_code == 200
    long = await http.post("/threads/busy/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 10**9}})
    run_id = long.json()["run_id"]
    await _counted(http, "kept", 1)
    answer = await http.post("/threads/prune", json={
        "thread_ids": ["done", "asked", "busy", "done", "nobody"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"pruned_count": 3}
    assert await _search(http, limit=100) == ["kept"]
    assert store.get_run(run_id) is None  # stopped, then deleted with its thread
    assert (await http.get("/threads/busy")).status_code == 404
    assert (await http.post("/threads/prune", json={"thread_ids": []})).json() == {
        "pruned_count": 0}


async def test_prune_keeping_the_latest_state_is_refused_with_why(
        http: httpx.AsyncClient) -> None:
    await _counted(http, "t", 2)
    answer = await http.post("/threads/prune", json={"thread_ids": ["t"],
                                                     "strategy": "keep_latest"})
    assert answer.status_code == 422
    assert "keep_latest" in answer.text and "only 'delete'" in answer.text
    assert len((await http.post("/threads/t/history", json={"limit": 10})).json()) == 4
    assert (await http.post("/threads/prune", json={"thread_ids": ["t"],
                                                    "strategy": "all"})).status_code == 422


async def test_a_thread_whose_last_run_failed_shows_its_error(http: httpx.AsyncClient) -> None:
    assert (await http.post("/threads", json={"thread_id": "t"})).status_code == 200
    assert (await http.get("/threads/t")).json()["error"] is None
    failed = await http.post("/threads/t/runs/wait", json={
        "assistant_id": "failing", "input": {"value": 7}})
    assert failed.status_code == 200, failed.text
    thread = (await http.get("/threads/t")).json()
    assert thread["status"] == "error"
    assert thread["error"] == {"error": "ValueError", "message": "boom at 7"}
    assert (await _search(http, status="error")) == ["t"]
    await _counted(http, "ok", 1)
    assert (await http.get("/threads/ok")).json()["error"] is None
