"""The server's parts on their own: API keys, the bind rule, JSON shapes, the run feed."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tether.checkpoint.memory import InMemorySaver
from tether.messages import AIMessage
from tether.server import ApiKeys, load_api_keys
from tether.server.auth import check_bind, is_loopback
from tether.server.feed import RunFeed
from tether.server.graphs import Assistants
from tether.server.guards import Guard
from tether.server.limits import StreamSlots
from tether.server.wire import AGENT_STATUS, assistant_id_of, dumps, error_json, run_json
from tether.types import CancelReason, Interrupt, RunInfo, RunStatus, Send

from .server_graphs import counter

# -- keys -------------------------------------------------------------------------------------


def test_keys_parse_from_commas_and_lines_with_comments() -> None:
    keys = ApiKeys.parse("k1:alpha, k2:beta\n# a comment\nk3:alpha  # trailing\n")
    assert len(keys) == 3 and keys.tenants == {"alpha", "beta"}
    found = keys.principal("k2")
    assert found is not None and found.tenant == "beta"
    assert keys.principal("k4") is None and keys.principal("") is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "no 'key:tenant'"),
    ("justakey", "entry 1"),
    ("k1:a,:b", "entry 2"),
    ("k1:a,k1:b", "two tenants"),
    ("k 1:a", "whitespace"),
])
def test_malformed_keys_are_refused_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApiKeys.parse(text)


def test_keys_come_from_a_file_before_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("filekey:t1\n")
    env = {"TETHER_API_KEYS": "envkey:t2"}
    from_file = load_api_keys(file=path, env=env)
    assert from_file is not None and from_file.principal("filekey") is not None
    from_env = load_api_keys(env=env)
    assert from_env is not None and from_env.principal("envkey") is not None
    assert load_api_keys(env={}) is None
    with pytest.raises(ValueError, match=r"\$TETHER_API_KEYS"):
        load_api_keys(env={"TETHER_API_KEYS": "broken"})


def test_an_error_never_shows_a_whole_key() -> None:
    with pytest.raises(ValueError) as raised:
        ApiKeys.parse("supersecret:a,supersecret:b")
    assert "supersecret" not in str(raised.value)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("example.com", False),
])
def test_only_loopback_hosts_may_serve_without_keys(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    check_bind(host, auth=True)
    if loopback:
        check_bind(host, auth=False)
    else:
        with pytest.raises(ValueError, match="refusing"):
            check_bind(host, auth=False)


def test_stream_slots_count_per_key() -> None:
    slots = StreamSlots(2)
    assert slots.acquire("a") and slots.acquire("a") and not slots.acquire("a")
    assert slots.acquire("b")
    slots.release("a")
    assert slots.held("a") == 1 and slots.acquire("a")


# -- JSON -------------------------------------------------------------------------------------


class Point(BaseModel):
    x: int


@dataclasses.dataclass
class Box:
    items: tuple[int, ...]
    at: datetime


def test_values_become_json_the_way_langgraph_clients_expect() -> None:
    value = {
        "message": AIMessage(content="hi", id="m1"),
        "point": Point(x=1),
        "box": Box((1, 2), datetime(2025, 1, 2, tzinfo=UTC)),
        "interrupt": Interrupt({"q": 1}, "i1"),
        "send": Send("node", {"a": 1}),
        "tags": {"x"},
        "error": ValueError("bad"),
    }
    assert dumps(value) == (
        b'{"message":{"content":"hi","id":"m1","name":null,"additional_kwargs":{},'
        b'"response_metadata":{},"tool_calls":[],"type":"ai"},"point":{"x":1},'
        b'"box":{"items":[1,2],"at":"2025-01-02T00:00:00+00:00"},'
        b'"interrupt":{"value":{"q":1},"id":"i1"},"send":{"node":"node","arg":{"a":1}},'
        b'"tags":["x"],"error":{"error":"ValueError","message":"bad"}}')


def test_every_tether_status_has_an_agent_server_status() -> None:
    assert set(AGENT_STATUS) == set(RunStatus)
    assert set(AGENT_STATUS.values()) <= {"pending", "running", "success", "error", "timeout",
                                          "interrupted"}
    assert AGENT_STATUS[RunStatus.CANCELLED] == "interrupted"


def test_a_run_record_carries_tethers_fields() -> None:
    reason = CancelReason("budget", "too many steps", "policy")
    info = RunInfo("r1", "t1", RunStatus.CANCELLED, reason, metadata={"graph": "counter"})
    out = run_json(info)
    assert out["status"] == "interrupted" and out["tether_status"] == "cancelled"
    assert out["cancel_reason"] == "too many steps"
    assert out["tether_reason"]["kind"] == "budget"
    assert out["assistant_id"] == assistant_id_of("counter")


def test_errors_split_into_type_and_message() -> None:
    assert error_json("ValueError: boom: again") == {"error": "ValueError",
                                                     "message": "boom: again"}
    assert error_json("orphaned: the process died") == {"error": "orphaned",
                                                        "message": "the process died"}
    assert error_json("no type here") == {"error": "Error", "message": "no type here"}


def test_assistant_ids_are_the_agent_servers() -> None:
    assert assistant_id_of("agent") == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


def test_graphs_are_bound_to_the_servers_store_under_their_ids() -> None:
    store = InMemorySaver()
    served = Assistants({"count": counter()}, store)
    graph = served.first.graph
    assert graph.checkpointer is store and graph.name == "count"
    assert served.get("count") is served.get(assistant_id_of("count"))
    with pytest.raises(TypeError, match="compiled tether graphs"):
        Assistants({"x": object()}, store)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least one graph"):
        Assistants({}, store)


# -- the feed ---------------------------------------------------------------------------------


def test_a_feed_keeps_its_last_events_and_each_subscriber_its_cursor() -> None:
    feed = RunFeed("r", limit=3)
    early = feed.subscribe(("values",))
    for i in range(5):
        feed.publish("values" if i % 2 == 0 else "updates", i)
    assert [e.payload for e in early.take()] == [2, 4]
    late = feed.subscribe(None, after=2)
    assert [e.seq for e in late.take()] == [3, 4]
    feed.publish("error", {"error": "E"})
    assert [e.event for e in early.take()] == ["error"]
    feed.close("final")
    assert early.done and feed.final == "final"
    assert feed.latest(("values",)) is not None
    assert feed.since(4)[0][0].wire() == b"event: values\r\ndata: 4\r\nid: 4\r\n\r\n"


@pytest.mark.anyio
async def test_a_subscriber_waits_for_the_next_event_or_times_out() -> None:
    feed = RunFeed("r", limit=10)
    sub = feed.subscribe()
    assert await sub.wait(0.01) is False
    asyncio.get_running_loop().call_later(0.01, feed.publish, "values", 1)
    assert await sub.wait(5) is True
    assert [e.payload for e in sub.take()] == [1]


@pytest.mark.anyio
async def test_a_subscriber_is_woken_only_by_its_modes_errors_and_the_close() -> None:
    feed = RunFeed("r", limit=10)
    sub = feed.subscribe(("values",))
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, feed.publish, "tasks", {"id": "t"})
    assert await feed.changed(0.1, frozenset({"values"})) is False
    loop.call_later(0.01, feed.publish, "error", {"error": "E"})
    assert await feed.changed(5, frozenset({"values"})) is True
    assert [e.event for e in sub.take()] == ["error"]
    loop.call_later(0.01, feed.close)
    assert await sub.wait(5) is True and sub.done


# -- the gate ---------------------------------------------------------------------------------


def _call(guard: Any, scope: dict[str, Any],
          messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


@pytest.mark.parametrize(("client", "allowed"), [
    (("203.0.113.7", 50000), False), (("10.0.0.2", 50000), False),
    (("127.0.0.1", 50000), True), (("::1", 50000), True)])
def test_a_server_without_keys_answers_only_clients_on_loopback(
        client: tuple[str, int], allowed: bool) -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    # Listening on loopback (a proxy on this host may forward from anywhere to it).
    scope = {"type": "http", "path": "/threads", "headers": [], "server": ("127.0.0.1", 2024),
             "client": client}
    sent = _call(Guard(app, keys=None, max_body_bytes=100), scope,
                 [{"type": "http.request", "body": b"{}", "more_body": False}])
    assert reached == (["/threads"] if allowed else [])
    assert allowed or sent[0]["status"] == 403


@pytest.mark.parametrize("key", [None, b"wrong", b"key-a"])
def test_a_websocket_passes_the_same_gate(key: bytes | None) -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    headers = [] if key is None else [(b"x-api-key", key)]
    scope = {"type": "websocket", "path": "/threads", "headers": headers,
             "client": ("203.0.113.7", 50000)}
    guard = Guard(app, keys=ApiKeys({"key-a": "tenant-a"}), max_body_bytes=100)
    sent = _call(guard, scope, [{"type": "websocket.connect"}])
    if key == b"key-a":
        assert reached == ["websocket"] and sent == []
    else:
        assert reached == [] and sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.anyio
async def test_a_subscriber_of_several_modes_is_woken_by_an_event_of_any_one() -> None:
    feed = RunFeed("r", limit=10)
    sub = feed.subscribe(("custom", "values"))
    asyncio.get_running_loop().call_later(0.01, feed.publish, "custom", {"i": 0})
    began = asyncio.get_running_loop().time()
    assert await sub.wait(5) is True
    assert asyncio.get_running_loop().time() - began < 1
    assert [e.payload for e in sub.take()] == [{"i": 0}]


def test_events_numbered_by_their_producer_keep_their_numbers_across_a_gap() -> None:
    feed = RunFeed("r", limit=10)
    feed.publish("metadata", {})
    for seq in (1, 2, 5, 6):
        feed.publish("custom", seq, seq=seq)
    feed.publish("custom", "repeat", seq=5)
    sub = feed.subscribe(None, after=2)
    assert [(e.seq, e.payload) for e in sub.take()] == [(5, 5), (6, 6)]
    assert feed.next_seq == 7 and [e.seq for e in feed.since(3)[0]] == [5, 6]
