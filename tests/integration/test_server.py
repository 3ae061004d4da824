"""The server through the official `langgraph-sdk` client: threads, runs, streams, cancels,
interrupts, multitask strategies — over HTTP to a real uvicorn server on a SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from tether.checkpoint.sqlite import SqliteSaver

from .server_graphs import LiveServer, eventually, serving

pytestmark = pytest.mark.anyio

LONG = {"count": 0, "limit": 100_000}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, SqliteSaver]]:
    with serving(tmp_path / "server.db") as pair:
        yield pair


@pytest.fixture
async def client(live: tuple[LiveServer, SqliteSaver]) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=live[0].url, api_key="key-a") as made:
        yield made


def _store(live: tuple[LiveServer, SqliteSaver]) -> SqliteSaver:
    return live[1]


async def _status(client: LangGraphClient, thread_id: str, run_id: str) -> str:
    return str((await client.runs.get(thread_id, run_id))["tether_status"])


async def test_long_run_streamed_cancelled_joined_with_reason_and_final_checkpoint(
        client: LangGraphClient, live: tuple[LiveServer, SqliteSaver]) -> None:
    thread = await client.threads.create(metadata={"purpose": "test"})
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "counter", input=LONG)
    assert run["status"] in ("pending", "running")
    seen: list[int] = []
    async for part in client.runs.join_stream(tid, run["run_id"], stream_mode="values"):
        if part.event == "values":
            seen.append(part.data["count"])
        if len(seen) == 3:
            receipt = await client.runs.cancel(tid, run["run_id"])
            assert receipt["tether_reason"]["kind"] == "user"
    assert seen == sorted(seen) and len(seen) >= 3
    values = await client.runs.join(tid, run["run_id"])
    ended = await client.runs.get(tid, run["run_id"])
    assert ended["status"] == "interrupted"
    assert ended["tether_status"] == "cancelled"
    assert ended["cancel_reason"].startswith("interrupt requested")
    assert ended["tether_reason"]["requested_by"] == "api:tenant-a"
    state = await client.threads.get_state(tid)
    assert state["next"] == ["tick"]
    # Every value streamed was checkpointed first: the final state is at least the last one
    # seen (the join may or may not catch the run's first value, so not "at least 3").
    assert state["values"]["count"] >= seen[-1] >= 2
    assert values["count"] == state["values"]["count"]
    stored = _store(live).get_run(run["run_id"])
    assert stored is not None and stored.checkpoint_id == ended["checkpoint_id"]
    assert state["checkpoint"]["checkpoint_id"] == stored.checkpoint_id
    phases = [e.phase for e in _store(live).events(run["run_id"])]
    cancel_phases = ["request", "propagate", "terminate_node", "cleanup", "checkpoint",
                     "terminate"]
    assert [p for p in phases if p in cancel_phases] == cancel_phases
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_cancel_with_wait_answers_the_terminal_record_and_a_finished_run_is_no_error(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input=LONG)
    await eventually(lambda: _is(client, tid, run["run_id"], "running"))
    ended = await client.runs.cancel(tid, run["run_id"], wait=True)
    assert ended["status"] == "interrupted" and ended["tether_status"] == "cancelled"
    assert ended["ended_at"] is not None and ended["cancel_latency_ms"] is not None
    again = await client.runs.cancel(tid, run["run_id"])
    assert again["tether_status"] == "cancelled"
    assert again["tether_reason"] == ended["tether_reason"]
    done = await client.runs.wait(tid, "counter", input={"count": 0, "limit": 1})
    assert done == {"count": 1, "limit": 1}
    finished = (await client.runs.list(tid, limit=1))[0]
    after = await client.runs.cancel(tid, finished["run_id"])
    assert after["status"] == "success" and after["cancel_reason"] is None


async def test_cancel_reason_from_the_body_is_recorded(live: tuple[LiveServer, SqliteSaver],
                                                        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input=LONG)
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as http:
        answer = await http.post(f"/threads/{tid}/runs/{run['run_id']}/cancel",
                                 params={"wait": 1}, json={"reason": "budget exceeded"})
    assert answer.status_code == 200
    assert answer.json()["cancel_reason"] == "budget exceeded"
    assert _store(live).get_run(run["run_id"]).reason.message == "budget exceeded"  # type: ignore[union-attr]


async def test_stream_of_a_new_run_yields_metadata_then_the_requested_modes(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(tid, "counter", input={"count": 0, "limit": 2},
                                                 stream_mode=["values", "updates"])]
    assert parts[0].event == "metadata" and "run_id" in parts[0].data
    assert [p.event for p in parts[1:]] == ["values", "updates", "values", "updates", "values"]
    assert parts[-1].data == {"count": 2, "limit": 2}
    assert parts[2].data == {"tick": {"count": 1}}


async def test_stream_lifecycle_mode_ends_with_the_terminate_event(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(tid, "counter", input={"count": 0, "limit": 1},
                                                 stream_mode="lifecycle")]
    phases = [p.data["phase"] for p in parts if p.event == "lifecycle"]
    assert phases and phases[-1] in ("terminate", "finish")


async def test_failed_run_streams_an_error_event_and_join_reports_it(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(tid, "failing", input={"value": 7})]
    assert parts[-1].event == "error"
    assert parts[-1].data == {"error": "ValueError", "message": "boom at 7"}
    run = (await client.runs.list(tid))[0]
    assert run["status"] == "error" and "boom at 7" in run["error"]
    assert run["error_node"] == "boom"
    assert run["error_traceback"].startswith("Traceback (most recent call last):")
    assert run["error_traceback"].endswith("ValueError: boom at 7")
    assert (await client.runs.get(tid, run["run_id"]))["error_node"] == "boom"
    joined = await client.runs.join(tid, run["run_id"])
    assert joined["__error__"]["error"] == "ValueError"
    assert (await client.threads.get(tid))["status"] == "error"


async def test_interrupt_then_resume_with_command(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    paused = await client.runs.wait(tid, "approval", input={"question": "ship it?"})
    assert paused["__interrupt__"][0]["value"] == {"question": "ship it?"}
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    [waiting] = list(thread["interrupts"].values())
    assert waiting[0]["value"] == {"question": "ship it?"}
    run = (await client.runs.list(tid))[0]
    assert run["status"] == "interrupted" and run["tether_status"] == "interrupted"
    done = await client.runs.wait(tid, "approval", command={"resume": "yes"})
    assert done == {"question": "ship it?", "answer": "yes"}
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_interrupt_before_pauses_and_a_run_without_input_continues(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "counter", input={"count": 0, "limit": 2},
                           interrupt_before=["tick"])
    state = await client.threads.get_state(tid)
    assert state["next"] == ["tick"] and state["values"]["count"] == 0
    done = await client.runs.wait(tid, "counter", input=None)
    assert done == {"count": 2, "limit": 2}


async def test_multitask_reject_answers_409_and_enqueue_runs_after(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "counter", input={"count": 0, "limit": 10})
    with pytest.raises(ConflictError):
        await client.runs.create(tid, "counter", input=LONG, multitask_strategy="reject")
    second = await client.runs.create(tid, "counter", input={"count": 100, "limit": 101})
    assert second["multitask_strategy"] == "enqueue"
    await client.runs.join(tid, second["run_id"])
    one = _started_and_ended(await client.runs.get(tid, first["run_id"]))
    two = _started_and_ended(await client.runs.get(tid, second["run_id"]))
    assert one[1] <= two[0], "the enqueued run started before the first ended"
    assert (await client.threads.get_state(tid))["values"]["count"] == 101


def _started_and_ended(run: dict[str, Any]) -> tuple[str, str]:
    assert run["status"] == "success", run
    return run["started_at"], run["ended_at"]


async def test_multitask_interrupt_supersedes_the_running_run(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "counter", input=LONG)
    await eventually(lambda: _is(client, tid, first["run_id"], "running"))
    second = await client.runs.create(tid, "counter", input={"count": 0, "limit": 1},
                                      multitask_strategy="interrupt")
    await client.runs.join(tid, second["run_id"])
    superseded = await client.runs.get(tid, first["run_id"])
    assert superseded["tether_status"] == "cancelled"
    assert superseded["tether_reason"]["kind"] == "superseded"
    assert (await client.runs.get(tid, second["run_id"]))["status"] == "success"


async def test_multitask_rollback_removes_the_superseded_runs_checkpoints(
        client: LangGraphClient, live: tuple[LiveServer, SqliteSaver]) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "counter", input=LONG)
    await eventually(lambda: _is(client, tid, first["run_id"], "running"))
    await asyncio.sleep(0.1)
    second = await client.runs.create(tid, "counter", input={"count": 50, "limit": 51},
                                      multitask_strategy="rollback")
    await client.runs.join(tid, second["run_id"])
    assert (await client.runs.get(tid, first["run_id"]))["tether_status"] == "cancelled"
    history = await client.threads.get_history(tid, limit=100)
    assert all(h["metadata"].get("run_id") != first["run_id"] for h in history)
    assert history[0]["values"] == {"count": 51, "limit": 51}


async def _is(client: LangGraphClient, tid: str, run_id: str, status: str) -> bool:
    return await _status(client, tid, run_id) == status


async def test_cancel_action_rollback_drops_the_cancelled_runs_checkpoints(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "counter", input={"count": 0, "limit": 1})
    kept = (await client.threads.get_state(tid))["checkpoint"]["checkpoint_id"]
    run = await client.runs.create(tid, "counter", input=LONG)
    await eventually(lambda: _is(client, tid, run["run_id"], "running"))
    await asyncio.sleep(0.1)
    await client.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    ended = await client.runs.get(tid, run["run_id"])
    assert ended["tether_status"] == "cancelled"
    assert ended["tether_reason"]["evidence"] == {"action": "rollback"}
    state = await eventually(lambda: _state_at(client, tid, kept))
    assert state["values"] == {"count": 1, "limit": 1}


async def _state_at(client: LangGraphClient, tid: str, checkpoint_id: str) -> Any:
    state = await client.threads.get_state(tid)
    return state if state["checkpoint"]["checkpoint_id"] == checkpoint_id else None


async def test_bulk_cancel_by_ids_and_by_status(client: LangGraphClient) -> None:
    one = (await client.threads.create())["thread_id"]
    two = (await client.threads.create())["thread_id"]
    a = await client.runs.create(one, "counter", input=LONG)
    b = await client.runs.create(two, "counter", input=LONG)
    await eventually(lambda: _is(client, one, a["run_id"], "running"))
    await client.runs.cancel_many(thread_id=one, run_ids=[a["run_id"]])
    await eventually(lambda: _is(client, one, a["run_id"], "cancelled"))
    assert await _status(client, two, b["run_id"]) in ("pending", "running")
    await client.runs.cancel_many(status="all")
    await eventually(lambda: _is(client, two, b["run_id"], "cancelled"))
    with pytest.raises(NotFoundError):
        await client.runs.cancel_many(status="running")


async def test_stateless_wait_and_stream_leave_no_thread(client: LangGraphClient) -> None:
    before = await client.threads.search(limit=100)
    assert await client.runs.wait(None, "counter", input={"count": 0, "limit": 2}) == \
        {"count": 2, "limit": 2}
    parts = [p async for p in client.runs.stream(None, "counter",
                                                 input={"count": 5, "limit": 6})]
    assert parts[-1].data == {"count": 6, "limit": 6}
    assert await eventually(lambda: _threads_back_to(client, len(before)))


async def test_stateless_background_runs_alone_and_in_a_batch(
        client: LangGraphClient, live: tuple[LiveServer, SqliteSaver]) -> None:
    before = len(await client.threads.search(limit=100))
    run = await client.runs.create(None, "counter", input={"count": 0, "limit": 2})
    assert run["status"] in ("pending", "running", "success")
    assert await client.runs.join(run["thread_id"], run["run_id"]) == {"count": 2, "limit": 2}
    kept = await client.runs.create(None, "counter", input={"count": 0, "limit": 1},
                                    on_completion="keep", metadata={"mine": 1})
    assert kept["metadata"] == {"mine": 1}
    batch = await client.runs.create_batch([
        {"assistant_id": "counter", "input": {"count": 0, "limit": n}, "on_completion": "keep"}
        for n in (3, 4)] + [{"assistant_id": "counter", "input": {"count": 0, "limit": 5}}])
    assert len({r["run_id"] for r in batch}) == len({r["thread_id"] for r in batch}) == 3
    for made, limit in zip(batch[:2], (3, 4), strict=True):
        assert await client.runs.join(made["thread_id"], made["run_id"]) == {
            "count": limit, "limit": limit}
    await client.runs.join(kept["thread_id"], kept["run_id"])
    # The threads kept stay; the others go once their run has ended.
    assert await eventually(lambda: _threads_back_to(client, before + 3))
    assert await client.runs.create_batch([]) == []
    store = _store(live)
    runs_before = len(store.list_runs(limit=1000))
    with pytest.raises(NotFoundError):  # an unknown assistant in a batch starts none of it
        await client.runs.create_batch([
            {"assistant_id": "counter", "input": {"count": 0, "limit": 1}},
            {"assistant_id": "nope", "input": {}}])
    with pytest.raises(httpx.HTTPStatusError) as refused:  # so does a config a run refuses
        await client.runs.create_batch([
            {"assistant_id": "counter", "input": {"count": 0, "limit": 1}},
            {"assistant_id": "counter", "input": {}, "config": {"recursion_limit": -1}}])
    assert refused.value.response.status_code == 422
    assert len(store.list_runs(limit=1000)) == runs_before
    assert len(await client.threads.search(limit=100)) == before + 3


async def _threads_back_to(client: LangGraphClient, count: int) -> Any:
    return len(await client.threads.search(limit=100)) == count


async def test_join_stream_with_last_event_id_replays_what_followed(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input={"count": 0, "limit": 5},
                                   stream_resumable=True)
    await client.runs.join(tid, run["run_id"])
    full = [p async for p in client.runs.join_stream(tid, run["run_id"], stream_mode="values")]
    assert full[0].event == "metadata"
    assert [p.data["count"] for p in full[1:]] == [0, 1, 2, 3, 4, 5]
    rest = [p async for p in client.runs.join_stream(tid, run["run_id"], stream_mode="values",
                                                     last_event_id=full[3].id)]
    assert [p.data["count"] for p in rest] == [3, 4, 5]


async def test_thread_state_history_update_and_listing(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "counter", input={"count": 0, "limit": 2})
    history = await client.threads.get_history(tid, limit=10)
    assert [h["values"].get("count") for h in history] == [2, 1, 0, None]
    older = await client.threads.get_state(tid, checkpoint_id=history[1]["checkpoint_id"])
    assert older["values"]["count"] == 1
    written = await client.threads.update_state(tid, {"count": 40}, as_node="tick")
    assert written["checkpoint"]["checkpoint_id"]
    assert (await client.threads.get_state(tid))["values"]["count"] == 40
    runs = await client.runs.list(tid, status="success")
    assert len(runs) == 1 and runs[0]["assistant_id"]
    graph = await client.assistants.get_graph("counter")
    assert {n["id"] for n in graph["nodes"]} >= {"__start__", "tick", "__end__"}
    assert (await client.assistants.get(runs[0]["assistant_id"]))["graph_id"] == "counter"


async def test_run_timeout_from_config_ends_as_timeout(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input=LONG, config={"timeout": 0.2})
    await client.runs.join(tid, run["run_id"])
    ended = await client.runs.get(tid, run["run_id"])
    assert ended["status"] == "timeout" and ended["tether_reason"]["kind"] == "timeout"


async def test_deleting_a_thread_cancels_its_runs_first(
        client: LangGraphClient, live: tuple[LiveServer, SqliteSaver]) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input=LONG)
    await eventually(lambda: _is(client, tid, run["run_id"], "running"))
    await client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)
    assert _store(live).get_run(run["run_id"]) is None


async def test_tether_resume_continues_a_cancelled_run_from_its_checkpoint(
        live: tuple[LiveServer, SqliteSaver], client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input={"count": 0, "limit": 30})
    await eventually(lambda: _is(client, tid, run["run_id"], "running"))
    await asyncio.sleep(0.1)
    stopped = await client.runs.cancel(tid, run["run_id"], wait=True)
    async with httpx.AsyncClient(base_url=live[0].url, headers={"x-api-key": "key-a"}) as http:
        answer = await http.post(f"/tether/runs/{run['run_id']}/resume", json={})
    assert answer.status_code == 200, answer.text
    resumed = answer.json()
    assert resumed["thread_id"] == tid and resumed["run_id"] != run["run_id"]
    assert await client.runs.join(tid, resumed["run_id"]) == {"count": 30, "limit": 30}
    assert stopped["checkpoint_id"]


async def test_run_metadata_reaches_the_record_and_checkpoints_with_the_tenant(
        client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "counter", input={"count": 0, "limit": 1},
                                   metadata={"purpose": "audit"})
    assert run["metadata"] == {"purpose": "audit"}
    await client.runs.join(tid, run["run_id"])
    state = await client.threads.get_state(tid)
    assert state["metadata"]["purpose"] == "audit"
    assert state["metadata"]["tether_tenant"] == "tenant-a"
    assert state["metadata"]["graph_id"] == "counter"
    thread = await client.threads.get(tid)
    assert thread["metadata"]["graph_id"] == "counter"


async def test_subgraph_events_are_named_by_namespace(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(tid, "nested", input={"count": 0, "limit": 2},
                                                 stream_mode="updates", stream_subgraphs=True)]
    events = [p.event for p in parts[1:]]
    assert "updates" in events
    inner = [e for e in events if e.startswith("updates|inner:")]
    assert len(inner) == 2, events
