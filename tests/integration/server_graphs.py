"""Graphs the server tests serve, and `LiveServer`: a real uvicorn server on a free port, run in
a thread, for tests that talk to it over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import uvicorn
from fastapi import FastAPI

import tether
from tether.checkpoint.sqlite import SqliteSaver
from tether.config import get_config, get_store
from tether.graph import END, START, StateGraph
from tether.server import create_app, onewrite
from tether.types import interrupt

STEP = 0.02
"""Seconds one `tick` takes (a cancel point: `tether.sleep`)."""


class Count(TypedDict):
    count: int
    limit: int


async def tick(state: Count) -> dict[str, int]:
    await tether.sleep(STEP)
    return {"count": state["count"] + 1}


def _again(state: Count) -> str:
    return END if state["count"] >= state["limit"] else "tick"


def counter() -> Any:
    """`tick` again and again until `count` reaches `limit`: long with a large limit."""
    builder = StateGraph(Count)
    builder.add_node("tick", tick)
    builder.set_entry_point("tick")
    builder.add_conditional_edges("tick", _again, {"tick": "tick", END: END})
    return builder.compile()


class Ask(TypedDict):
    question: str
    answer: str


def ask(state: Ask) -> dict[str, str]:
    answer = interrupt({"question": state["question"]})
    return {"answer": str(answer)}


def approval() -> Any:
    """One node that asks a question (`interrupt`) and records the answer."""
    builder = StateGraph(Ask)
    builder.add_node("ask", ask)
    builder.set_entry_point("ask")
    builder.set_finish_point("ask")
    return builder.compile()


class Work(TypedDict):
    value: int


async def boom(state: Work) -> dict[str, int]:
    raise ValueError(f"boom at {state['value']}")


def failing() -> Any:
    """One node that raises `ValueError`."""
    builder = StateGraph(Work)
    builder.add_node("boom", boom)
    builder.set_entry_point("boom")
    builder.set_finish_point("boom")
    return builder.compile()


def nested() -> Any:
    """A graph whose one node is `counter` as a subgraph."""
    builder = StateGraph(Count)
    builder.add_node("inner", counter())
    builder.set_entry_point("inner")
    builder.set_finish_point("inner")
    return builder.compile()


class Memo(TypedDict):
    topic: str
    greeting: str


def remember(state: Memo) -> dict[str, str]:
    """Greet the caller by the name in its profile, and remember the topic, in the store the
    graph was given (the server's, for a graph compiled without one): under the tenant of the
    run's key, as the server's `/store` routes expect."""
    store = get_store()
    tenant = get_config()["metadata"].get("tether_tenant") or "local"
    profile = store.get((tenant, "profile"), "me")
    store.put((tenant, "memories"), state["topic"], {"topic": state["topic"]})
    name = profile.value["name"] if profile is not None else "stranger"
    return {"greeting": f"hello {name}, noted: {state['topic']}"}


def memo(store: Any = None) -> Any:
    """One node that reads the caller's profile from the long-term store and writes a memory."""
    builder = StateGraph(Memo)
    builder.add_node("remember", remember)
    builder.set_entry_point("remember")
    builder.set_finish_point("remember")
    return builder.compile(store=store)


counter_graph = counter()
"""`counter` as a module attribute, for `tether worker integration.server_graphs:counter_graph`."""

memo_graph = memo()
"""`memo` compiled without a store, for `tether worker`: the worker gives it one."""


def graphs() -> dict[str, Any]:
    """Every graph, by the id the server serves it as (compiled without a checkpointer)."""
    return {"counter": counter(), "approval": approval(), "failing": failing(),
            "nested": nested()}


class LiveServer:
    """A uvicorn server for `app` on 127.0.0.1 and a free port, in a background thread.

    Use as a context manager: entering waits until it accepts connections; leaving shuts it
    down (its lifespan cancels the runs still going) and joins the thread.
    """

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on",
                                http=onewrite.protocol("auto"), timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="tether-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


@contextlib.asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` in this process (no socket), inside the app's lifespan."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        yield client


KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
"""API key → tenant for the test servers."""


@contextlib.contextmanager
def serving(db: Path, **options: Any) -> Iterator[tuple[LiveServer, SqliteSaver]]:
    """A live server for `graphs()` on a SQLite file, with `KEYS` unless `options` say else."""
    store = SqliteSaver(db)
    try:
        app = create_app(graphs(), store, **{"api_keys": KEYS, **options})
        with LiveServer(app) as server:
            yield server, store
    finally:
        store.close()


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """Poll `check` (sync or async) until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(0.01)


def chat() -> Any:
    """A chat model node (a scripted model: offline), for token streaming."""
    from tether.graph import MessagesState
    from tether.prebuilt.scripted import ScriptedChatModel

    llm = ScriptedChatModel(responses=["Tokens from a worker"], cycle=True)

    async def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    return StateGraph(MessagesState).add_node("model", model).add_edge(START, "model").compile()


chat_graph = chat()
"""`chat` as a module attribute, for `tether worker integration.server_graphs:chat_graph`."""
