"""Hostile and malformed requests get a clear 4xx, never a 500, on both backends; what is
already stored (however odd) is always rendered; every validation error has the shape the
OpenAPI document declares."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.conftest import fresh_schema
from tether.checkpoint.base import CheckpointStore
from tether.checkpoint.sqlite import SqliteSaver
from tether.server import ServerLimits, create_app

from .server_graphs import KEYS, LiveServer, graphs

DEEP = 600
"""Nesting deeper than any request may carry (and deeper than Python's JSON tools recurse)."""


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """(url, store) of a live server on each backend, shared by this module's tests, each on
    threads of its own (Postgres: runs queue for workers that these tests never start)."""
    if request.param == "sqlite":
        store: Any = SqliteSaver(str(tmp_path_factory.mktemp("inputs") / "inputs.db"))
        try:
            with LiveServer(create_app(graphs(), store, api_keys=KEYS)) as server:
                yield server.url, store
        finally:
            store.close()
        return
    from tether.checkpoint.postgres import PostgresSaver

    with fresh_schema() as (dsn, schema):
        store = PostgresSaver(dsn, schema=schema)
        limits = ServerLimits(cancel_wait_seconds=0.3)
        try:
            with LiveServer(create_app(graphs(), store, api_keys=KEYS, limits=limits)) as server:
                yield server.url, store
        finally:
            store.close()


@pytest.fixture
def http(served: tuple[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0], headers={"x-api-key": "key-a"}, timeout=30) as client:
        yield client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    return http.post(path, content=text.encode(), headers={"content-type": "application/json"})


def assert_validation_error(answer: httpx.Response) -> None:
    """A 422 whose `detail` is what the OpenAPI document declares: a list of {loc, msg, type}."""
    assert answer.status_code == 422, (answer.status_code, answer.text[:300])
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for item in detail:
        assert isinstance(item["loc"], list) and all(isinstance(p, (str, int))
                                                     for p in item["loc"])
        assert isinstance(item["msg"], str) and isinstance(item["type"], str)


# -- item: values that cannot be rendered are refused on the way in --------------------------


@pytest.mark.parametrize("metadata", ['{"\\ud800": 1}', '{"x": "\\udfff"}',
                                      f'{{"x": {nested(DEEP)}}}', '{"x": NaN}',
                                      '{"x": 1e999999}'])
def test_thread_metadata_that_cannot_be_rendered_is_refused_and_search_stays_up(
        http: httpx.Client, metadata: str) -> None:
    answer = post_raw(http, "/threads", f'{{"metadata": {metadata}}}')
    assert 400 <= answer.status_code < 500, answer.text[:200]
    assert answer.json()["detail"]
    assert http.post("/threads/search", json={}).status_code == 200
    patched = post_raw(http, "/threads", "{}").json()["thread_id"]
    answer = http.patch(f"/threads/{patched}", content=f'{{"metadata": {metadata}}}'.encode(),
                        headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500
    assert http.post("/threads/search", json={}).status_code == 200


def test_every_response_renders_what_is_already_stored(served: tuple[str, Any],
                                                       http: httpx.Client,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store: CheckpointStore = served[1]
    # The stores now refuse such metadata (tests/conformance/test_threads.py); a file written
    # before they did may still hold it, and must still be answered.
    for module in ("memory", "sqlite.threads", "postgres.threads"):
        monkeypatch.setattr(f"tether.checkpoint.{module}.check_metadata", lambda *_: None)
    odd: dict[str, Any] = {"deep": json.loads(nested(DEEP))}
    if type(store).__name__ != "PostgresSaver":  # jsonb holds none of these
        odd.update(surrogate="a\ud800b", nan=math.nan, inf=-math.inf, nul="x\x00y")
    tid = post_raw(http, "/threads", '{"metadata": {"mine": 1}, "graph_id": "approval"}'
                   ).json()["thread_id"]
    store.put_thread(tid, odd)
    graph = graphs()["approval"].rebind(store)
    # As deep as the serializer stores (255 levels): deeper than the web framework recurses.
    graph.update_state({"configurable": {"thread_id": tid}},
                       {"question": [math.nan, math.inf, json.loads(nested(250))]},
                       as_node="ask")
    for answer in (http.get(f"/threads/{tid}"), http.post("/threads/search", json={}),
                   http.post("/threads/search", json={"metadata": {"mine": 1}}),
                   http.get(f"/threads/{tid}/state"),
                   http.post(f"/threads/{tid}/history", json={})):
        assert answer.status_code == 200, answer.text[:300]
        json.loads(answer.content.decode("utf-8"))  # strict: valid UTF-8, no NaN literals


# -- item: 4xx instead of 500 ------------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999999"])
@pytest.mark.parametrize("path", ["/threads", "/threads/search", "/runs/wait", "/runs/cancel",
                                  "/assistants/search", "THREAD/runs", "THREAD/state",
                                  "THREAD/history"])
def test_a_non_finite_number_in_a_failing_body_is_a_422_with_a_list_detail(
        http: httpx.Client, path: str, number: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    path = path.replace("THREAD", f"/threads/{tid}")
    assert_validation_error(post_raw(http, path, f'{{"zzz_unknown": {number}}}'))


@pytest.mark.parametrize("body", ["{", "[", "}", "{'a':1}", '{"a":1,}', "\x00", '{"a":1}{"b":2}',
                                  '"x"', "[]", '{"reason": 5}', '{"reason": NaN}'])
def test_a_malformed_cancel_body_is_a_422(http: httpx.Client, body: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    run = http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter",
                                                   "input": {"count": 0, "limit": 1}}).json()
    answer = http.post(f"/threads/{tid}/runs/{run['run_id']}/cancel", content=body.encode(),
                       headers={"content-type": "application/json"})
    assert_validation_error(answer)


@pytest.mark.parametrize("config", [{"configurable": 5}, {"configurable": [1]},
                                    {"configurable": "x"}, {"a": 1}, {"recursion_limit": "x"},
                                    {"timeout": -1}, {"budget": 3}, {"timeout": 1e30},
                                    {"priority": 2**63}, {"priority": 1.5}])
def test_a_malformed_run_config_is_a_422_on_every_backend(http: httpx.Client,
                                                          config: dict[str, Any]) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    answer = http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter",
                                                      "input": {"count": 0, "limit": 1},
                                                      "config": config})
    assert_validation_error(answer)
    assert http.get(f"/threads/{tid}/runs").json() == []


@pytest.mark.parametrize("field", ["input", "values"])
def test_deeply_nested_input_or_values_are_refused(http: httpx.Client, field: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    if field == "input":
        text = f'{{"assistant_id": "counter", "input": {{"count": 0, "limit": {nested(DEEP)}}}}}'
        answer = post_raw(http, f"/threads/{tid}/runs", text)
    else:
        answer = post_raw(http, f"/threads/{tid}/state", f'{{"values": {nested(DEEP)}}}')
    assert 400 <= answer.status_code < 500, answer.text[:200]
    assert http.get(f"/threads/{tid}/runs").json() == []


@pytest.mark.parametrize("query", ["limit=9223372036854775808", "limit=-1", "offset=-5",
                                   "offset=99999999999999999999", "limit=0"])
def test_out_of_range_paging_is_a_422(http: httpx.Client, query: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    assert_validation_error(http.get(f"/threads/{tid}/runs?{query}"))
    if not query.startswith("offset"):
        assert_validation_error(http.get(f"/tether/runs?{query}"))


@pytest.mark.parametrize("body", [{"offset": False}, {"limit": True}, {"offset": 2**63},
                                  {"limit": 2**63}, {"offset": -1}])
@pytest.mark.parametrize("path", ["/threads/search", "/assistants/search"])
def test_out_of_range_or_boolean_paging_in_a_body_is_a_422(http: httpx.Client, path: str,
                                                          body: dict[str, Any]) -> None:
    assert_validation_error(http.post(path, json=body))


@pytest.mark.parametrize("key", ["\x00", "a\x00b", "tether_tenant\x00"])
def test_nul_in_a_search_key_or_value_is_answered(http: httpx.Client, key: str) -> None:
    for body in ({"metadata": {key: "x"}}, {"metadata": {"x": key}}):
        answer = http.post("/threads/search", json=body)
        assert answer.status_code in (200, 422), answer.text[:200]
        if answer.status_code == 422:
            assert_validation_error(answer)
    created = http.post("/threads", json={"metadata": {key: key}})
    assert created.status_code in (200, 422), created.text[:200]


def test_every_validation_error_the_server_raises_has_the_declared_shape(
        http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    for answer in (
        http.get(f"/threads/{tid}/runs?status=bogus"),
        http.get("/tether/runs?limit=5000"),
        http.get("/assistants/counter/graph?xray=bogus"),
        http.get(f"/threads/{tid}/runs/x/stream?stream_mode=bogus"),
        http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter", "input": {},
                                                "context": {"a": 1},
                                                "config": {"configurable": {"b": 2}}}),
        http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter",
                                                "interrupt_before": ["nope"]}),
        http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter", "input": {},
                                                "stream_mode": "events"}),
        http.post("/runs/wait", json={"assistant_id": "counter", "input": {},
                                      "config": {"recursion_limit": 0}}),
    ):
        if answer.status_code == 404:
            continue  # a stream of an unknown run: not found before its query is read
        assert_validation_error(answer)


@pytest.mark.postgres
def test_cancel_with_wait_past_its_wait_answers_202_on_postgres(tmp_path: Path) -> None:
    from tether.checkpoint.postgres import PostgresSaver

    with fresh_schema() as (dsn, schema):
        store = PostgresSaver(dsn, schema=schema)
        try:
            app = create_app(graphs(), store, api_keys=KEYS,
                             limits=ServerLimits(cancel_wait_seconds=0.2))
            with LiveServer(app) as server, httpx.Client(
                    base_url=server.url, headers={"x-api-key": "key-a"}) as http:
                tid = http.post("/threads", json={}).json()["thread_id"]
                run = http.post(f"/threads/{tid}/runs", json={
                    "assistant_id": "counter", "input": {"count": 0, "limit": 100}}).json()
                # A worker holds it (a lease nobody renews here): the cancel cannot end it.
                claimed = store.db.run(_claim(run["run_id"]))
                assert claimed
                answer = http.post(f"/threads/{tid}/runs/{run['run_id']}/cancel?wait=1")
                assert answer.status_code == 202, answer.text[:300]
                assert answer.json()["tether_status"] == "cancelling"
        finally:
            store.close()


def _claim(run_id: str) -> Any:
    from tether.checkpoint.postgres.ops import Query

    rows = yield Query("UPDATE runs SET lease_owner = 'elsewhere', epoch = epoch + 1, "
                       "lease_expires_at = now() + interval '1 hour' WHERE run_id = %s "
                       "RETURNING run_id", (run_id,), "all")
    return rows


@pytest.mark.parametrize("values", [{"count": "notanint"}, [1, 2], "text"])
def test_state_values_the_graph_cannot_take_are_a_4xx(http: httpx.Client,
                                                      values: Any) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter",
                                             "input": {"count": 0, "limit": 1}})
    http.post(f"/threads/{tid}/state", json={"values": {"count": 1, "limit": 1}})
    # The counter's conditional edge compares the values: it fails on these.
    answer = http.post(f"/threads/{tid}/state", json={"values": values})
    assert 400 <= answer.status_code < 500, answer.text[:300]
    if answer.status_code == 422:
        assert_validation_error(answer)
    assert http.get(f"/threads/{tid}/state").status_code == 200


@pytest.mark.parametrize("path", ["/threads/%00", "/threads/%00/state", "/threads/T/state/%00",
                                  "/threads/T/runs/%00", "/threads/T/runs/%00/join",
                                  "/tether/runs/%00", "/assistants/%00"])
def test_a_nul_in_a_path_is_not_found(http: httpx.Client, path: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    answer = http.get(path.replace("/T/", f"/{tid}/"))
    assert answer.status_code == 404, answer.text[:200]


def test_a_nul_in_a_cancel_reason_is_a_422(http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    run = http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter",
                                                   "input": {"count": 0, "limit": 1}}).json()
    assert_validation_error(http.post(f"/threads/{tid}/runs/{run['run_id']}/cancel",
                                      params={"reason": "a\x00b"}))


@pytest.mark.parametrize("body", [
    '{"namespace": ["tenant-a"], "key": "k", "value": {"x": NaN}}',
    '{"namespace": ["tenant-a"], "key": "k", "value": {"\\ud800": 1}}',
    f'{{"namespace": ["tenant-a"], "key": "k", "value": {{"x": {nested(DEEP)}}}}}',
    '{"namespace": ["tenant-a", "a\\u0000b"], "key": "k", "value": {}}',
    '{"namespace": ["tenant-a"], "key": "k\\u0000", "value": {}}'])
def test_a_store_item_that_cannot_be_kept_is_refused(http: httpx.Client, body: str) -> None:
    answer = http.put("/store/items", content=body.encode(),
                      headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text[:200]
    assert http.post("/store/items/search", json={"namespace_prefix": ["tenant-a"]}
                     ).status_code == 200


@pytest.mark.parametrize("body", [{"limit": False}, {"offset": 2**63}, {"query": "a\x00"},
                                  {"filter": {"x": "\x00"}}])
def test_a_malformed_store_search_is_a_422(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_validation_error(http.post("/store/items/search",
                                      json={"namespace_prefix": ["tenant-a"], **body}))


@pytest.mark.parametrize(("query", "named"), [
    ("thread=%00", ["thread"]), ("thread=a%00b&limit=2", ["thread"]),
    ("limit=2&status=%00x&thread=a%00", ["status", "thread"]), ("a%00=1", ["a\\x00"])])
def test_a_nul_in_a_query_is_a_422_naming_the_parameter(http: httpx.Client, query: str,
                                                          named: list[str]) -> None:
    answer = http.get(f"/tether/runs?{query}")
    assert_validation_error(answer)
    assert [item["loc"][1] for item in answer.json()["detail"]] == named
    assert http.get("/tether/runs?limit=2").status_code == 200
