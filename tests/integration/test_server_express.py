"""The express lanes (`tether.server.express`): a run's cancel and a run's read are answered
before FastAPI's routing, with the answer the route gives; whatever a lane does not take, the
route answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from tether.checkpoint.sqlite import SqliteSaver
from tether.errors import ConfigError, RunNotFound
from tether.server import create_app, errors
from tether.server.errors import STATUS
from tether.server.routes import cancel, runs
from tether.types import RunInfo, RunStatus

from .server_graphs import eventually, graphs, in_process

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(tmp_path: Path) -> Any:
    made = SqliteSaver(tmp_path / "express.db")
    yield made
    made.close()


@pytest.fixture
def app(store: SqliteSaver) -> FastAPI:
    return create_app(graphs(), store, auth=False)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app) as client:
        yield client


def routes_taken(monkeypatch: pytest.MonkeyPatch, module: Any, method: str) -> list[str]:
    """The paths of the requests of `method` that the routes of `module` answered (not an
    express lane): a route reads the server and the caller from its `Request` (`parts`), a
    lane from the scope."""
    seen: list[str] = []
    parts = module.parts

    def noted(request: Request) -> Any:
        if request.method == method:
            seen.append(request.url.path)
        return parts(request)

    monkeypatch.setattr(module, "parts", noted)
    return seen


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the cancels the route answered."""
    return routes_taken(monkeypatch, cancel, "POST")


def answered(response: httpx.Response) -> tuple[int, str, bytes]:
    """What a client is answered: the status, the content type and the bytes."""
    return response.status_code, response.headers["content-type"], response.content


async def _running(http: httpx.AsyncClient, store: SqliteSaver) -> tuple[str, str]:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    run_id = (await http.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 10_000}})).json()["run_id"]
    await eventually(lambda: getattr(store.get_run(run_id), "checkpoint_id", None) is not None)
    return tid, run_id


async def test_a_cancel_is_answered_by_the_express_lane_as_the_route_answers_it(
        http: httpx.AsyncClient, store: SqliteSaver, routed: list[str]) -> None:
    tid, run_id = await _running(http, store)
    path = f"/threads/{tid}/runs/{run_id}/cancel"
    fast = await http.post(path, params={"wait": 1, "action": "interrupt"})
    assert fast.status_code == 200 and fast.json()["status"] == "interrupted"
    assert routed == []
    record = store.get_run(run_id)
    assert record is not None and record.status is RunStatus.CANCELLED
    # The same request with a parameter the lane does not know goes to the route: the same
    # answer (the run has ended: its terminal record), byte for byte.
    slow = await http.post(path, params={"wait": 1, "action": "interrupt", "other": "x"})
    assert routed == [path]
    assert answered(slow) == answered(fast)


async def test_a_cancel_that_does_not_wait_is_answered_202_by_the_lane(
        http: httpx.AsyncClient, store: SqliteSaver, routed: list[str]) -> None:
    tid, run_id = await _running(http, store)
    answer = await http.post(f"/threads/{tid}/runs/{run_id}/cancel")
    assert answer.status_code == 202 and routed == []
    assert answer.json()["run_id"] == run_id
    ended = await http.post(f"/threads/{tid}/runs/{run_id}/cancel", params={"wait": "true"})
    assert ended.status_code == 200 and ended.json()["status"] == "interrupted"


@pytest.mark.parametrize(("query", "body"), [
    ({"wait": "yes"}, None),  # a value FastAPI reads, the lane does not
    ({"wait": 1, "wait ": 1}, None),
    ({"reason": "enough"}, None),
    ({"wait": 1}, {"reason": "enough"}),
    ({"wait": 1, "action": "interrupt"}, {}),
])
async def test_what_the_lane_does_not_take_the_route_answers(
        http: httpx.AsyncClient, store: SqliteSaver, routed: list[str],
        query: dict[str, Any], body: dict[str, Any] | None) -> None:
    tid, run_id = await _running(http, store)
    path = f"/threads/{tid}/runs/{run_id}/cancel"
    answer = await http.post(path, params=query, json=body)
    assert answer.status_code in (200, 202) and routed == [path]
    if "reason" in str(query) + str(body):
        record = await eventually(lambda: store.get_run(run_id))
        assert record.reason is not None and record.reason.message == "enough"


@pytest.mark.parametrize("query", [
    "wait=1&wait=0", "action=stop", "wait=2", "wait=1&action=interrupt&action=rollback",
])
async def test_refusals_stay_the_routes(http: httpx.AsyncClient, store: SqliteSaver,
                                        routed: list[str], query: str) -> None:
    tid, run_id = await _running(http, store)
    path = f"/threads/{tid}/runs/{run_id}/cancel"
    answer = await http.post(f"{path}?{query}")
    if answer.status_code == 422:  # refused by FastAPI before the route runs
        assert answer.json()["detail"][0]["loc"][0] == "query"
    else:  # FastAPI reads the last of a repeated parameter
        assert answer.status_code in (200, 202) and routed == [path]


async def test_an_unknown_run_or_thread_is_refused_by_the_route(
        http: httpx.AsyncClient, store: SqliteSaver, routed: list[str]) -> None:
    tid, run_id = await _running(http, store)
    missing = await http.post(f"/threads/{tid}/runs/nope/cancel", params={"wait": 1})
    assert missing.status_code == 404 and "run" in missing.json()["detail"]
    other = await http.post(f"/threads/nope/runs/{run_id}/cancel", params={"wait": 1})
    assert other.status_code == 404
    assert routed == [f"/threads/{tid}/runs/nope/cancel", f"/threads/nope/runs/{run_id}/cancel"]


async def test_a_failure_after_the_lookup_is_answered_as_the_app_answers_it(
        http: httpx.AsyncClient, app: FastAPI, store: SqliteSaver, routed: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tid, run_id = await _running(http, store)
    launcher = app.state.tether.launcher

    async def gone(*_args: Any, **_kwargs: Any) -> Any:
        raise RunNotFound(run_id)

    monkeypatch.setattr(launcher, "cancel", gone)
    answer = await http.post(f"/threads/{tid}/runs/{run_id}/cancel", params={"wait": 1})
    assert answer.status_code == 404 and answer.json()["error"] == "RunNotFound"
    assert routed == []


def _made(kind: type[Exception]) -> Exception:
    """An instance of one of tether's exceptions, whatever its constructor takes."""
    for count in range(1, 4):
        try:
            return kind(*["x"] * count)
        except TypeError:
            continue
    raise AssertionError(kind)


@pytest.mark.parametrize("exc", [
    *(_made(kind) for kind, _ in STATUS),
    HTTPException(409, "busy"), HTTPException(422, "bad"), HTTPException(204),
    RequestValidationError([{"loc": ("query", "wait"), "msg": "bad", "type": "bool_parsing"}]),
])
async def test_answer_for_is_the_installed_handlers_answer(app: FastAPI, exc: Exception) -> None:
    handler = next(app.exception_handlers[cls] for cls in type(exc).__mro__
                   if cls in app.exception_handlers)
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    expected = await handler(request, exc)  # type: ignore[misc]
    found = errors.answer_for(exc)
    assert found is not None
    assert (found.status_code, found.body, found.headers.items()) == \
        (expected.status_code, expected.body, expected.headers.items())


def test_answer_for_leaves_other_exceptions_to_the_servers_500() -> None:
    assert errors.answer_for(RuntimeError("boom")) is None


async def test_a_cancel_of_a_run_this_server_drives_reads_no_run_record(
        http: httpx.AsyncClient, store: SqliteSaver, monkeypatch: pytest.MonkeyPatch) -> None:
    tid, run_id = await _running(http, store)
    reads: list[str] = []
    get_run = store.get_run

    def noted(wanted: str) -> RunInfo | None:
        reads.append(wanted)
        return get_run(wanted)

    monkeypatch.setattr(store, "get_run", noted)
    answer = await http.post(f"/threads/{tid}/runs/{run_id}/cancel", params={"wait": 1})
    assert answer.status_code == 200 and answer.json()["status"] == "interrupted"
    assert reads == []  # the run itself answered where it is (its thread), not the store
    # Once it has ended, the store answers again; another thread's id is still refused.
    other = (await http.post("/threads", json={})).json()["thread_id"]
    refused = await http.post(f"/threads/{other}/runs/{run_id}/cancel", params={"wait": 1})
    assert refused.status_code == 404


async def test_a_run_this_server_drives_is_refused_under_another_threads_id(
        http: httpx.AsyncClient, store: SqliteSaver) -> None:
    tid, run_id = await _running(http, store)
    other = (await http.post("/threads", json={})).json()["thread_id"]
    refused = await http.post(f"/threads/{other}/runs/{run_id}/cancel", params={"wait": 1})
    assert refused.status_code == 404 and "run" in refused.json()["detail"]
    record = store.get_run(run_id)
    assert record is not None and record.status is RunStatus.RUNNING
    await http.post(f"/threads/{tid}/runs/{run_id}/cancel", params={"wait": 1})


@pytest.fixture
def read_by_route(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the reads the routes of `runs` answered."""
    return routes_taken(monkeypatch, runs, "GET")


async def test_a_run_is_read_by_the_express_lane_as_the_route_reads_it(
        http: httpx.AsyncClient, store: SqliteSaver, read_by_route: list[str]) -> None:
    tid, run_id = await _running(http, store)
    path = f"/threads/{tid}/runs/{run_id}"
    live = await http.get(path)
    assert live.status_code == 200 and live.json()["status"] == "running"
    await http.post(f"{path}/cancel", params={"wait": 1})
    fast = await http.get(path)
    assert read_by_route == []
    assert fast.status_code == 200 and fast.json()["status"] == "interrupted"
    # With a query string (FastAPI ignores what the route does not declare) the route answers:
    # the same answer, byte for byte.
    slow = await http.get(path, params={"other": "x"})
    assert read_by_route == [path]
    assert answered(slow) == answered(fast)


async def test_an_unknown_run_or_thread_read_is_refused_by_the_route(
        http: httpx.AsyncClient, store: SqliteSaver, read_by_route: list[str]) -> None:
    tid, run_id = await _running(http, store)
    missing = await http.get(f"/threads/{tid}/runs/nope")
    assert missing.status_code == 404 and "run" in missing.json()["detail"]
    other = (await http.post("/threads", json={})).json()["thread_id"]
    elsewhere = await http.get(f"/threads/{other}/runs/{run_id}")
    assert elsewhere.status_code == 404
    assert read_by_route == [f"/threads/{tid}/runs/nope", f"/threads/{other}/runs/{run_id}"]
    # Other reads of that shape's neighbours are not the lane's: join, stream, the run list.
    listed = await http.get(f"/threads/{tid}/runs")
    assert listed.status_code == 200 and [r["run_id"] for r in listed.json()] == [run_id]
    await http.post(f"/threads/{tid}/runs/{run_id}/cancel", params={"wait": 1})
    joined = await http.get(f"/threads/{tid}/runs/{run_id}/join")
    assert joined.status_code == 200


async def test_a_read_that_fails_after_the_lookup_is_answered_as_the_app_answers_it(
        http: httpx.AsyncClient, app: FastAPI, store: SqliteSaver,
        read_by_route: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    tid, run_id = await _running(http, store)

    async def unreadable(*_args: Any, **_kwargs: Any) -> Any:
        raise ConfigError("an unreadable record")

    monkeypatch.setattr(runs, "run_out", unreadable)
    answer = await http.get(f"/threads/{tid}/runs/{run_id}")
    assert answer.status_code == dict(STATUS)[ConfigError]
    assert answer.json()["error"] == "ConfigError"
    assert read_by_route == []
    await http.post(f"/threads/{tid}/runs/{run_id}/cancel", params={"wait": 1})
