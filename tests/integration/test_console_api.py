"""The routes the web console calls, over HTTP on a real server: the run list (filters, search,
pages, tenants, clear 422s), the live board (SSE), a run in full (kept state, usage, error,
lineage), the timeline, resume refused where it would rewind a thread, and edit and continue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.server import create_app
from tether.types import RunStatus, utcnow

from .console_graphs import graphs
from .server_graphs import KEYS, LiveServer, eventually

pytestmark = pytest.mark.anyio

LONG = {"count": 0, "limit": 100_000}
Live = tuple[LiveServer, SqliteSaver]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    store = SqliteSaver(tmp_path / "console.db")
    try:
        with LiveServer(create_app(graphs(), store, api_keys=KEYS)) as server:
            yield server, store
    finally:
        store.close()


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as c:
        yield c


async def _start(http: httpx.AsyncClient, graph: str, graph_input: Any, *,
                 thread_id: str | None = None, **extra: Any) -> dict[str, Any]:
    tid = thread_id or (await http.post("/threads", json={})).json()["thread_id"]
    answer = await http.post(f"/threads/{tid}/runs", json={"assistant_id": graph,
                                                           "input": graph_input, **extra})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _ended(http: httpx.AsyncClient, run: dict[str, Any]) -> dict[str, Any]:
    joined = await http.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}/join")
    assert joined.status_code == 200
    return dict((await http.get(f"/tether/runs/{run['run_id']}")).json())


async def _stop(http: httpx.AsyncClient, run: dict[str, Any], reason: str) -> None:
    await eventually(lambda: _status_is(http, run, "running"))
    await asyncio.sleep(0.1)
    answer = await http.post(f"/threads/{run['thread_id']}/runs/{run['run_id']}/cancel",
                             params={"wait": 1}, json={"reason": reason})
    assert answer.json()["tether_status"] == "cancelled"


async def _status_is(http: httpx.AsyncClient, run: dict[str, Any], status: str) -> bool:
    got = await http.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}")
    return bool(got.json()["tether_status"] == status)


# -- the list --------------------------------------------------------------------------------


async def test_the_list_filters_by_status_graph_thread_kind_time_and_text(
        http: httpx.AsyncClient) -> None:
    done = await _start(http, "counter", {"count": 0, "limit": 1}, metadata={"ticket": "T-42"})
    failed = await _start(http, "failing", {"value": 1})
    stopped = await _start(http, "counter", LONG)
    await _ended(http, done)
    await _ended(http, failed)
    await _stop(http, stopped, "enough")

    async def ids(**params: Any) -> list[str]:
        answer = await http.get("/tether/runs", params=params)
        assert answer.status_code == 200, answer.text
        return [r["run_id"] for r in answer.json()["runs"]]

    assert await ids(status="error") == [failed["run_id"]]
    assert await ids(status="error,cancelled") == [stopped["run_id"], failed["run_id"]]
    assert await ids(graph="failing") == [failed["run_id"]]
    assert await ids(thread=done["thread_id"]) == [done["run_id"]]
    assert await ids(kind="user") == [stopped["run_id"]]
    assert await ids(q="t-42") == [done["run_id"]]
    assert await ids(q="ENOUGH") == [stopped["run_id"]]
    assert len(await ids(since=(utcnow() - timedelta(minutes=5)).isoformat())) == 3
    assert await ids(until=(utcnow() - timedelta(minutes=5)).isoformat()) == []


async def test_the_list_pages_through_every_run_and_counts_them(
        http: httpx.AsyncClient) -> None:
    runs = [await _start(http, "counter", {"count": 0, "limit": 0}) for _ in range(7)]
    newest_first = [r["run_id"] for r in reversed(runs)]
    seen: list[str] = []
    for offset in (0, 3, 6):
        answer = (await http.get("/tether/runs", params={"limit": 3, "offset": offset})).json()
        assert answer["total"] == 7 and answer["offset"] == offset
        seen += [r["run_id"] for r in answer["runs"]]
    assert seen == newest_first
    facets = answer["facets"]
    assert "counter" in facets["graphs"] and "superseded" in facets["kinds"]
    assert "cancelled" in facets["statuses"]


@pytest.mark.parametrize(("params", "words"), [
    ({"status": "done"}, "unknown status 'done'"),
    ({"kind": "boredom"}, "unknown reason kind 'boredom'"),
    ({"since": "yesterday"}, "since 'yesterday' is not an ISO 8601 time"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"offset": -1}, "offset"),
    ({"colour": "red"}, "colour"),
])
async def test_a_bad_list_query_is_a_422_that_names_the_problem(
        http: httpx.AsyncClient, params: dict[str, Any], words: str) -> None:
    answer = await http.get("/tether/runs", params=params)
    assert answer.status_code == 422
    assert words in json.dumps(answer.json()["detail"])


async def test_another_tenant_sees_none_of_the_runs(live: Live, http: httpx.AsyncClient) -> None:
    run = await _start(http, "counter", {"count": 0, "limit": 0})
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-b"}) as other:
        listed = (await other.get("/tether/runs")).json()
        assert listed["runs"] == [] and listed["total"] == 0
        assert (await other.get(f"/tether/runs/{run['run_id']}/timeline")).status_code == 404
        assert (await other.post(f"/tether/runs/{run['run_id']}/fork",
                                 json={"values": {}})).status_code == 404


# -- the live board ---------------------------------------------------------------------------


async def _board_events(http: httpx.AsyncClient, seq: int, wanted: int,
                        found: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with http.stream("GET", "/tether/live", headers={"last-event-id": str(seq)}) as sse:
        ready.set()
        event = ""
        async for line in sse.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "run":
                found.append(json.loads(line[5:]))
                if len(found) >= wanted:
                    return


async def test_the_board_pushes_each_change_of_a_run_to_its_tenant_only(
        live: Live, http: httpx.AsyncClient) -> None:
    seq_a = (await http.get("/tether/runs")).json()["board_seq"]
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-b"}) as other:
        seq_b = (await other.get("/tether/runs")).json()["board_seq"]
        seen_a: list[dict[str, Any]] = []
        seen_b: list[dict[str, Any]] = []
        ready = [asyncio.Event(), asyncio.Event()]
        readers = [asyncio.ensure_future(_board_events(http, seq_a, 1000, seen_a, ready[0])),
                   asyncio.ensure_future(_board_events(other, seq_b, 1000, seen_b, ready[1]))]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 5)
        run = await _start(http, "counter", LONG)
        await _stop(http, run, "seen live")
        await asyncio.wait_for(_until(lambda: any(
            r["run_id"] == run["run_id"] and r["tether_status"] == "cancelled" for r in seen_a)),
            5)
        await asyncio.sleep(0.3)
        for reader in readers:
            reader.cancel()
    assert seen_b == []
    statuses = [r["tether_status"] for r in seen_a if r["run_id"] == run["run_id"]]
    assert statuses[0] in ("pending", "running") and statuses[-1] == "cancelled"
    assert seen_a[-1]["cancel_reason"] == "seen live"


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.02)


# -- one run ----------------------------------------------------------------------------------


async def test_a_stopped_run_shows_what_it_kept_its_usage_and_its_audit_log(
        live: Live, http: httpx.AsyncClient) -> None:
    run = await _start(http, "counter", LONG, config={"budget": {"steps": 100_000}})
    await _stop(http, run, "look at it")
    detail = (await http.get(f"/tether/runs/{run['run_id']}")).json()
    snap = live[1].load(run["run_id"])
    kept = detail["kept"]
    assert kept["values"] == snap.values and kept["step"] == snap.step > 0
    # The cancel lands inside a `tick` (cancelled) or, now and then, while the step before it
    # is being checkpointed (then no task was in flight); the page shows what the store holds.
    assert kept["cancelled_tasks"] == list(snap.cancelled_tasks)
    assert set(snap.cancelled_tasks) <= {"tick"} and kept["next"] == ["tick"]
    assert kept["checkpoint_id"] == snap.checkpoint_id
    assert kept["partial_answers"] == [] and detail["run"]["partial_answers"] == []  # no model
    phases = [e["phase"] for e in detail["events"]]
    cancel = ["request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]
    assert [p for p in phases if p in cancel] == cancel
    usage = detail["usage"]
    assert usage["usage"]["node_calls"]["tick"] >= snap.step
    assert usage["budget"] == {"steps": 100_000}
    assert detail["resume"] == {"allowed": True, "why": None}
    assert detail["run"]["tether_reason"]["message"] == "look at it"


async def test_a_failed_run_names_its_failing_node(http: httpx.AsyncClient) -> None:
    detail = await _ended(http, await _start(http, "failing", {"value": 7}))
    assert detail["error"]["node"] == "boom"
    assert detail["error"]["message"] == "ValueError: boom at 7"
    assert "ValueError: boom at 7" in detail["error"]["traceback"]
    assert detail["run"]["error_node"] == "boom"


async def test_a_paused_run_shows_its_question(http: httpx.AsyncClient) -> None:
    run = await _start(http, "approval", {"question": "Ship it?", "answer": ""})
    detail = await _ended(http, run)
    assert [i["value"] for i in detail["interrupts"]] == [{"question": "Ship it?"}]
    assert "answer its question" in detail["resume"]["why"]


async def test_the_timeline_has_a_step_per_checkpoint_with_its_changes(
        http: httpx.AsyncClient) -> None:
    run = await _start(http, "counter", {"count": 0, "limit": 3})
    await _ended(http, run)
    timeline = (await http.get(f"/tether/runs/{run['run_id']}/timeline")).json()
    ticks = [s for s in timeline["steps"] if s["tasks"]]
    assert [s["step"] for s in ticks] == [1, 2, 3]
    assert all(t["name"] == "tick" and t["status"] == "done" for s in ticks for t in s["tasks"])
    assert ticks[-1]["changes"] == [{"path": ["count"], "op": "changed", "before": 2,
                                     "after": 3}]


# -- resume and fork ----------------------------------------------------------------------------


async def test_resume_is_refused_for_a_superseded_run_and_where_the_thread_moved_on(
        live: Live, http: httpx.AsyncClient) -> None:
    first = await _start(http, "counter", LONG)
    await eventually(lambda: _status_is(http, first, "running"))
    second = await _start(http, "counter", {"count": 0, "limit": 2},
                          thread_id=first["thread_id"], multitask_strategy="interrupt")
    await _ended(http, second)
    detail = (await http.get(f"/tether/runs/{first['run_id']}")).json()
    assert detail["run"]["tether_reason"]["kind"] == "superseded"
    assert detail["resume"]["allowed"] is False
    assert f"run {second['run_id']} superseded" in detail["resume"]["why"]
    assert detail["lineage"]["superseded_by"] == second["run_id"]
    refused = await http.post(f"/tether/runs/{first['run_id']}/resume", json={})
    assert refused.status_code == 409 and "superseded" in refused.json()["detail"]
    assert len(live[1].list_runs(thread_id=first["thread_id"])) == 2

    third = await _start(http, "counter", LONG)
    await _stop(http, third, "pause")
    fourth = await _start(http, "counter", {"count": 0, "limit": 1},
                          thread_id=third["thread_id"])
    await _ended(http, fourth)
    refused = await http.post(f"/tether/runs/{third['run_id']}/resume", json={})
    assert refused.status_code == 409
    assert "has moved on" in refused.json()["detail"]


async def test_a_resume_is_recorded_as_lineage_on_both_runs(http: httpx.AsyncClient) -> None:
    run = await _start(http, "counter", {"count": 0, "limit": 40})
    await _stop(http, run, "later")
    resumed = (await http.post(f"/tether/runs/{run['run_id']}/resume", json={})).json()
    done = await _ended(http, resumed)
    assert done["lineage"]["resumed_from"] == run["run_id"]
    before = (await http.get(f"/tether/runs/{run['run_id']}")).json()
    assert before["lineage"]["resumed_by"] == [resumed["run_id"]]


async def test_edit_and_continue_forks_from_the_final_checkpoint(
        live: Live, http: httpx.AsyncClient) -> None:
    run = await _start(http, "counter", LONG)
    running = await http.post(f"/tether/runs/{run['run_id']}/fork",
                              json={"values": {"limit": 1}})
    assert running.status_code == 409 and "stop it" in running.json()["detail"]
    await _stop(http, run, "edit it")
    kept = live[1].load(run["run_id"])
    bad = await http.post(f"/tether/runs/{run['run_id']}/fork",
                          json={"values": {"limit": 1}, "as_node": "nope"})
    assert bad.status_code == 422 and "nope" in bad.json()["detail"][0]["msg"]
    target = kept.values["count"] + 3
    fork = await http.post(f"/tether/runs/{run['run_id']}/fork",
                           json={"values": {"limit": target}})
    assert fork.status_code == 200, fork.text
    done = await _ended(http, fork.json())
    assert done["run"]["tether_status"] == "success"
    assert done["lineage"]["forked_from"] == run["run_id"]
    assert done["lineage"]["fork_checkpoint"] == kept.checkpoint_id
    assert done["kept"]["values"] == {"count": target, "limit": target}
    original = live[1].get_checkpoint(run["thread_id"], "", kept.checkpoint_id)
    assert original is not None and original.values["limit"] == LONG["limit"]
    info = live[1].get_run(fork.json()["run_id"])
    assert info is not None and info.status is RunStatus.SUCCESS
    source = (await http.get(f"/tether/runs/{run['run_id']}")).json()
    assert source["lineage"]["forks"] == [fork.json()["run_id"]]
