"""The server over plain HTTP: keys and tenants, clear errors (401, 404, 409, 413, 422, 429),
disconnects, stream lifetimes, and the server without auth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tether.checkpoint.sqlite import SqliteSaver
from tether.server import ServerLimits, create_app, serve
from tether.types import RunStatus

from .server_graphs import LiveServer, eventually, graphs, serving

pytestmark = pytest.mark.anyio

LONG = {"count": 0, "limit": 100_000}
Live = tuple[LiveServer, SqliteSaver]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with serving(tmp_path / "server.db") as pair:
        yield pair


@pytest.fixture
async def http_a(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as c:
        yield c


@pytest.fixture
async def http_b(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-b"}) as c:
        yield c


async def _long_run(http: httpx.AsyncClient) -> tuple[str, str]:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    answer = await http.post(f"/threads/{tid}/runs",
                             json={"assistant_id": "counter", "input": LONG})
    assert answer.status_code == 200, answer.text
    return tid, answer.json()["run_id"]


async def _tether_status(http: httpx.AsyncClient, tid: str, run_id: str) -> str:
    return str((await http.get(f"/threads/{tid}/runs/{run_id}")).json()["tether_status"])


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": ""}])
async def test_missing_or_invalid_key_is_401_and_changes_nothing(
        live: Live, http_a: httpx.AsyncClient, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=live[0].url, headers=headers) as anon:
        created = await anon.post("/threads", json={"metadata": {"by": "anon"}})
        listed = await anon.post("/threads/search", json={})
        ran = await anon.post("/runs/wait", json={"assistant_id": "counter",
                                                   "input": {"count": 0, "limit": 1}})
    assert [r.status_code for r in (created, listed, ran)] == [401, 401, 401]
    assert "x-api-key" in created.json()["detail"]
    assert live[1].list_runs() == []
    assert (await http_a.post("/threads/search", json={})).json() == []


async def test_public_paths_answer_without_a_key(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live[0].url) as anon:
        assert (await anon.get("/ok")).json() == {"ok": True}
        assert (await anon.get("/tether/config")).json()["auth"] is True
        page = await anon.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert (await anon.get("/tether/runs")).status_code == 401


# -- tenants ----------------------------------------------------------------------------------


async def test_one_tenant_cannot_see_or_cancel_another_tenants_threads_and_runs(
        http_a: httpx.AsyncClient, http_b: httpx.AsyncClient) -> None:
    tid, run_id = await _long_run(http_a)
    base = f"/threads/{tid}/runs/{run_id}"
    assert (await http_b.get(f"/threads/{tid}")).status_code == 404
    assert (await http_b.get(base)).status_code == 404
    assert (await http_b.post(f"{base}/cancel")).status_code == 404
    assert (await http_b.get(f"{base}/join")).status_code == 404
    assert (await http_b.get(f"{base}/stream")).status_code == 404
    assert (await http_b.get(f"/threads/{tid}/state")).status_code == 404
    assert (await http_b.delete(f"/threads/{tid}")).status_code == 404
    assert (await http_b.get(f"/tether/runs/{run_id}")).status_code == 404
    assert (await http_b.post(f"/tether/runs/{run_id}/resume", json={})).status_code == 404
    assert (await http_b.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": LONG})).status_code == 404
    assert (await http_b.post("/runs/cancel", json={"thread_id": tid, "run_ids": [run_id]})
            ).status_code == 404
    assert (await http_b.post("/runs/cancel", json={"status": "all"})).status_code == 404
    assert (await http_b.post("/threads/search", json={})).json() == []
    assert (await http_b.get("/tether/runs")).json()["runs"] == []
    assert await _tether_status(http_a, tid, run_id) == "running"
    mine = (await http_a.get("/tether/runs")).json()["runs"]
    assert [r["run_id"] for r in mine] == [run_id]


async def test_a_client_cannot_choose_its_tenant(http_a: httpx.AsyncClient,
                                                 http_b: httpx.AsyncClient) -> None:
    made = await http_b.post("/threads", json={"metadata": {"tether_tenant": "tenant-a"}})
    assert made.json()["metadata"] == {"tether_tenant": "tenant-b"}
    tid = made.json()["thread_id"]
    assert (await http_a.get(f"/threads/{tid}")).status_code == 404
    patched = await http_b.patch(f"/threads/{tid}", json={"metadata": {"tether_tenant": "x"}})
    assert patched.json()["metadata"]["tether_tenant"] == "tenant-b"


async def test_search_filters_by_metadata_within_the_tenant(http_a: httpx.AsyncClient) -> None:
    for colour in ("red", "blue", "red"):
        await http_a.post("/threads", json={"metadata": {"colour": colour}})
    found = (await http_a.post("/threads/search", json={"metadata": {"colour": "red"}})).json()
    assert len(found) == 2 and all(t["metadata"]["colour"] == "red" for t in found)
    idle = (await http_a.post("/threads/search", json={"status": "idle", "limit": 2})).json()
    assert len(idle) == 2


# -- errors -----------------------------------------------------------------------------------


async def test_unknown_objects_are_404(http_a: httpx.AsyncClient) -> None:
    tid = (await http_a.post("/threads", json={})).json()["thread_id"]
    assert (await http_a.get("/threads/nope")).status_code == 404
    assert (await http_a.get(f"/threads/{tid}/runs/nope")).status_code == 404
    assert (await http_a.post(f"/threads/{tid}/runs/nope/cancel")).status_code == 404
    assert (await http_a.get("/assistants/nope")).status_code == 404
    unknown = await http_a.post(f"/threads/{tid}/runs", json={"assistant_id": "nope"})
    assert unknown.status_code == 404 and "assistant" in unknown.json()["detail"]
    missing = await http_a.post("/threads/missing/runs", json={"assistant_id": "counter"})
    assert missing.status_code == 404


async def test_a_run_is_only_found_under_its_own_thread(http_a: httpx.AsyncClient) -> None:
    tid, run_id = await _long_run(http_a)
    other = (await http_a.post("/threads", json={})).json()["thread_id"]
    assert (await http_a.get(f"/threads/{other}/runs/{run_id}")).status_code == 404
    assert (await http_a.post(f"/threads/{tid}/runs/{run_id}/cancel")).status_code == 202


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "assistant_id"),
    ({"assistant_id": "counter", "stream_mode": "events"}, "astream_events"),
    ({"assistant_id": "counter", "stream_mode": "bogus"}, "stream_mode"),
    ({"assistant_id": "counter", "multitask_strategy": "later"}, "multitask_strategy"),
    ({"assistant_id": "counter", "inptu": {}}, "inptu"),
    ({"assistant_id": "counter", "input": {}, "command": {"resume": 1}}, "not both"),
    ({"assistant_id": "counter", "webhook": "http://x"}, "webhooks"),
    ({"assistant_id": "counter", "config": {"recursion_limt": 3}}, "recursion_limit"),
    ({"assistant_id": "counter", "interrupt_before": ["tick", "tock"]}, "tock"),
])
async def test_malformed_run_requests_are_422_with_a_clear_message(
        http_a: httpx.AsyncClient, body: dict[str, Any], needle: str) -> None:
    tid = (await http_a.post("/threads", json={})).json()["thread_id"]
    answer = await http_a.post(f"/threads/{tid}/runs", json=body)
    assert answer.status_code == 422, answer.text
    assert needle in answer.text


async def test_other_malformed_requests_are_422(http_a: httpx.AsyncClient) -> None:
    tid, run_id = await _long_run(http_a)
    bad_action = await http_a.post(f"/threads/{tid}/runs/{run_id}/cancel",
                                   params={"action": "explode"})
    assert bad_action.status_code == 422
    bad_reason = await http_a.post(f"/threads/{tid}/runs/{run_id}/cancel",
                                   json={"reason": 5, "extra": True})
    assert bad_reason.status_code == 422
    assert (await http_a.post("/threads/search", json={"limit": 0})).status_code == 422
    assert (await http_a.post("/runs/cancel", json={})).status_code == 422
    assert (await http_a.get(f"/threads/{tid}/runs", params={"status": "done"})).status_code \
        == 422
    assert (await http_a.get(f"/threads/{tid}/runs/{run_id}/stream",
                             params={"stream_mode": "nope"})).status_code == 422
    not_json = await http_a.post("/threads", content=b"{nope",
                                 headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    assert await _tether_status(http_a, tid, run_id) == "running"


async def test_bodies_over_the_limit_are_413_and_change_nothing(
        live: Live, http_a: httpx.AsyncClient) -> None:
    tid = (await http_a.post("/threads", json={})).json()["thread_id"]
    huge = {"assistant_id": "counter", "input": {"count": 0, "limit": 1, "pad": "x" * (1 << 20)}}
    answer = await http_a.post(f"/threads/{tid}/runs", json=huge)
    assert answer.status_code == 413
    assert "larger than" in answer.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 32_768

    streamed = await http_a.post(f"/threads/{tid}/runs", content=chunks(),
                                 headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert live[1].list_runs() == []


async def test_a_run_creates_its_thread_when_asked(http_a: httpx.AsyncClient,
                                                   http_b: httpx.AsyncClient) -> None:
    body = {"assistant_id": "counter", "input": {"count": 0, "limit": 1},
            "if_not_exists": "create"}
    done = await http_a.post("/threads/fresh-1/runs/wait", json=body)
    assert done.status_code == 200 and done.json() == {"count": 1, "limit": 1}
    thread = (await http_a.get("/threads/fresh-1")).json()
    assert thread["metadata"]["tether_tenant"] == "tenant-a"
    assert thread["metadata"]["graph_id"] == "counter"
    # Another tenant asking the same gets a thread of its own, as if the id were free.
    theirs = await http_b.post("/threads/fresh-1/runs/wait", json={**body, "input": {
        "count": 5, "limit": 6}})
    assert theirs.status_code == 200 and theirs.json() == {"count": 6, "limit": 6}
    assert (await http_a.get("/threads/fresh-1/state")).json()["values"]["count"] == 1


async def test_thread_ids_are_per_tenant_and_taking_one_reveals_nothing(
        live: Live, http_a: httpx.AsyncClient, http_b: httpx.AsyncClient) -> None:
    mine = await http_a.post("/threads", json={"thread_id": "shared", "metadata": {"by": "a"}})
    fresh = await http_b.post("/threads", json={"thread_id": "unused", "metadata": {"by": "b"}})
    taken = await http_b.post("/threads", json={"thread_id": "shared", "metadata": {"by": "b"}})
    # Answered as for an id nobody had: the same status and the same shape.
    assert (mine.status_code, fresh.status_code, taken.status_code) == (200, 200, 200)
    assert taken.json()["thread_id"] == "shared" and taken.json()["metadata"]["by"] == "b"
    assert (await http_a.get("/threads/shared")).json()["metadata"]["by"] == "a"
    assert (await http_b.get("/threads/shared")).json()["metadata"]["by"] == "b"
    again = await http_b.post("/threads", json={"thread_id": "shared"})
    assert again.status_code == 409  # now the caller's own
    same = await http_b.post("/threads", json={"thread_id": "shared", "if_exists": "do_nothing"})
    assert same.json()["metadata"]["by"] == "b"
    run = await http_b.post("/threads/shared/runs/wait", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 2}})
    assert run.json() == {"count": 2, "limit": 2}
    listed = (await http_b.get("/threads/shared/runs")).json()
    assert [r["thread_id"] for r in listed] == ["shared"]
    assert (await http_a.get("/threads/shared/runs")).json() == []
    assert (await http_a.get("/threads/shared/state")).json()["values"] == {}
    state = (await http_b.get("/threads/shared/state")).json()
    assert state["checkpoint"]["thread_id"] == "shared"
    found = (await http_b.post("/threads/search", json={"ids": ["shared"]})).json()
    assert [t["metadata"]["by"] for t in found] == ["b"]
    assert (await http_b.delete("/threads/shared")).status_code == 204
    assert (await http_a.get("/threads/shared")).status_code == 200
    assert (await http_a.post("/threads", json={"thread_id": "a/b"})).status_code == 422


async def test_creating_an_existing_thread_is_409_unless_asked_to_do_nothing(
        http_a: httpx.AsyncClient) -> None:
    made = (await http_a.post("/threads", json={"thread_id": "t-1"})).json()
    again = await http_a.post("/threads", json={"thread_id": "t-1"})
    assert again.status_code == 409
    same = await http_a.post("/threads", json={"thread_id": "t-1", "if_exists": "do_nothing"})
    assert same.json()["created_at"] == made["created_at"]


async def test_deleting_a_running_run_is_409(http_a: httpx.AsyncClient) -> None:
    tid, run_id = await _long_run(http_a)
    assert (await http_a.delete(f"/threads/{tid}/runs/{run_id}")).status_code == 409


async def test_deleting_a_finished_run_removes_its_record(live: Live,
                                                         http_a: httpx.AsyncClient) -> None:
    tid = (await http_a.post("/threads", json={})).json()["thread_id"]
    await http_a.post(f"/threads/{tid}/runs/wait",
                      json={"assistant_id": "counter", "input": {"count": 0, "limit": 1}})
    run_id = (await http_a.get(f"/threads/{tid}/runs")).json()[0]["run_id"]
    assert (await http_a.delete(f"/threads/{tid}/runs/{run_id}")).status_code == 204
    assert (await http_a.get(f"/threads/{tid}/runs/{run_id}")).status_code == 404
    assert live[1].get_run(run_id) is None
    assert (await http_a.get(f"/threads/{tid}/state")).json()["values"]["count"] == 1


# -- streams ----------------------------------------------------------------------------------


class Opened:
    """An open event stream: the response, and its line iterator (dropping the iterator
    would close the connection)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def aclose(self) -> None:
        await self.lines.aclose()  # type: ignore[attr-defined]
        await self.response.aclose()


async def _open_stream(http: httpx.AsyncClient, tid: str,
                       on_disconnect: str) -> tuple[str, Opened]:
    request = http.build_request("POST", f"/threads/{tid}/runs/stream", json={
        "assistant_id": "counter", "input": LONG, "on_disconnect": on_disconnect})
    opened = Opened(await http.send(request, stream=True))
    assert opened.response.status_code == 200
    async for line in opened.lines:
        if line.startswith("data:") and "run_id" in line:
            return line.split('"run_id":"')[1].split('"')[0], opened
    raise AssertionError("the stream ended before its metadata event")


@pytest.mark.parametrize(("mode", "expected"), [("cancel", "cancelled"),
                                                 ("continue", "running")])
async def test_on_disconnect_cancels_or_lets_the_run_continue(
        live: Live, mode: str, expected: str) -> None:
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as http:
        tid = (await http.post("/threads", json={})).json()["thread_id"]
        run_id, response = await _open_stream(http, tid, mode)
        await response.aclose()
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as http:
        await eventually(lambda: _tether_is(http, tid, run_id, expected))
        if expected == "cancelled":
            run = (await http.get(f"/threads/{tid}/runs/{run_id}")).json()
            assert "on_disconnect=cancel" in run["cancel_reason"]
        else:
            await asyncio.sleep(0.2)
            assert await _tether_status(http, tid, run_id) == "running"


async def test_join_stream_with_cancel_on_disconnect_cancels_the_run(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as http:
        tid, run_id = await _long_run(http)
        request = http.build_request("GET", f"/threads/{tid}/runs/{run_id}/stream",
                                     params={"cancel_on_disconnect": "true"})
        opened = Opened(await http.send(request, stream=True))
        async for line in opened.lines:
            if line.startswith("data:"):
                break
        await opened.aclose()
        await eventually(lambda: _tether_is(http, tid, run_id, "cancelled"))
        run = (await http.get(f"/threads/{tid}/runs/{run_id}")).json()
        assert "cancel_on_disconnect" in run["cancel_reason"]


async def _tether_is(http: httpx.AsyncClient, tid: str, run_id: str, status: str) -> bool:
    return await _tether_status(http, tid, run_id) == status


async def test_streams_per_key_are_bounded_with_429(tmp_path: Path) -> None:
    limits = ServerLimits(max_streams_per_key=2)
    with serving(tmp_path / "s.db", limits=limits) as (server, _store):
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": "key-a"}) as a:
            tid = (await a.post("/threads", json={})).json()["thread_id"]
            _, first = await _open_stream(a, tid, "continue")
            _, second = await _open_stream(a, tid, "continue")
            third = await a.post(f"/threads/{tid}/runs/stream",
                                 json={"assistant_id": "counter", "input": LONG})
            assert third.status_code == 429 and "limit 2" in third.json()["detail"]
            async with httpx.AsyncClient(base_url=server.url,
                                         headers={"x-api-key": "key-b"}) as b:
                tid_b = (await b.post("/threads", json={})).json()["thread_id"]
                _, other = await _open_stream(b, tid_b, "cancel")
                await other.aclose()
            await first.aclose()
            await eventually(lambda: _stream_opens(a))
            await second.aclose()


async def _stream_opens(http: httpx.AsyncClient) -> bool:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    answer = await http.post(f"/threads/{tid}/runs/stream", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 1}})
    return answer.status_code == 200


async def test_a_stream_past_its_lifetime_is_followed_to_the_end_by_the_sdk(
        tmp_path: Path) -> None:
    limits = ServerLimits(max_stream_seconds=0.15, heartbeat_seconds=0.05)
    with serving(tmp_path / "s.db", limits=limits) as (server, _store):
        async with get_client(url=server.url, api_key="key-a") as client:
            tid = (await client.threads.create())["thread_id"]
            counts = [p.data["count"] async for p in client.runs.stream(
                tid, "counter", input={"count": 0, "limit": 20}) if p.event == "values"]
    assert counts == list(range(21))


async def test_heartbeats_keep_a_quiet_stream_open(tmp_path: Path) -> None:
    limits = ServerLimits(heartbeat_seconds=0.02)
    with serving(tmp_path / "s.db", limits=limits) as (server, _store):
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": "key-a"}) as a:
            tid = (await a.post("/threads", json={})).json()["thread_id"]
            wait = await a.post(f"/threads/{tid}/runs/wait", json={
                "assistant_id": "counter", "input": {"count": 0, "limit": 3}})
            assert wait.text.startswith("\n") and wait.json() == {"count": 3, "limit": 3}
            async with a.stream("POST", f"/threads/{tid}/runs/stream", json={
                    "assistant_id": "counter", "input": {"count": 0, "limit": 3},
                    "stream_mode": "custom"}) as stream:
                text = "".join([chunk async for chunk in stream.aiter_text()])
    assert ": heartbeat" in text and "event: metadata" in text


# -- without auth -----------------------------------------------------------------------------


async def test_no_auth_serves_on_loopback_with_no_key(tmp_path: Path) -> None:
    with serving(tmp_path / "s.db", auth=False) as (server, _store):
        async with get_client(url=server.url, api_key=None) as client:
            tid = (await client.threads.create())["thread_id"]
            done = await client.runs.wait(tid, "counter", input={"count": 0, "limit": 1})
            assert done == {"count": 1, "limit": 1}
        async with httpx.AsyncClient(base_url=server.url) as anon:
            assert (await anon.get("/tether/config")).json()["auth"] is False


def test_serve_refuses_no_auth_off_loopback_before_binding(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refusing to serve without API keys"):
        serve(graphs(), db=str(tmp_path / "s.db"), host="0.0.0.0", no_auth=True)
    assert not (tmp_path / "s.db").exists()


def test_auth_without_keys_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_API_KEYS", raising=False)
    with pytest.raises(ValueError, match="TETHER_API_KEYS"):
        serve(graphs(), db=str(tmp_path / "s.db"))
    store = SqliteSaver(tmp_path / "t.db")
    try:
        with pytest.raises(ValueError, match="TETHER_API_KEYS"):
            create_app(graphs(), store)
    finally:
        store.close()


async def test_an_app_without_auth_answers_403_off_loopback(tmp_path: Path) -> None:
    store = SqliteSaver(tmp_path / "s.db")
    try:
        app = create_app(graphs(), store, auth=False)
        # What counts is where the client is, not the address the server answers on.
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            answer = await c.post("/threads", json={})
        assert answer.status_code == 403 and "loopback" in answer.json()["detail"]
        assert store.search_threads() == []
    finally:
        store.close()


async def test_an_app_without_a_store_keeps_runs_in_tether_db(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app(graphs(), api_keys={"k": "t"})
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": "k"}) as http:
            tid = (await http.post("/threads", json={})).json()["thread_id"]
            await http.post(f"/threads/{tid}/runs/wait", json={
                "assistant_id": "counter", "input": {"count": 0, "limit": 1}})
    store = SqliteSaver(tmp_path / "tether.db")
    try:
        assert [r.status for r in store.list_runs(thread_id=tid)] == [RunStatus.SUCCESS]
    finally:
        store.close()
