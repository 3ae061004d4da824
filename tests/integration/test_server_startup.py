"""What a served process does before it listens, so that the first clients and later runs do not
pay for it on the loop: its start-up heap frozen out of the collector's sight, a shorter GIL
switch interval, and FastAPI's lazily built parts and the first run's imports made up front
(`warm_up`)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tether.server.app import SWITCH_INTERVAL, settle_heap

FROZEN = """
import gc, os, signal, sys, threading, time
from integration.server_graphs import graphs
from tether.server import serve

def watch():
    deadline = time.monotonic() + 20
    while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    print("frozen", gc.get_freeze_count(), sys.getswitchinterval(), flush=True)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=watch, daemon=True).start()
serve(graphs(), db=sys.argv[1], port=0, no_auth=True, log_level="warning")
"""


def test_a_served_process_freezes_its_heap_and_hands_the_gil_on_sooner(tmp_path: Path) -> None:
    # What the server built before it listens is out of the collector's sight, so a full
    # collection does not walk it while runs and requests wait (`settle_heap`).
    tests = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", FROZEN, str(tmp_path / "f.db")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    seen = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("frozen")]
    assert seen and int(seen[0][0]) > 10_000, done.stdout + done.stderr
    # The loop waits at most a millisecond for the GIL held by the store's writer thread.
    assert float(seen[0][1]) == SWITCH_INTERVAL < 0.005


FIRST = """
import asyncio, json, sys
import pydantic
from integration.server_graphs import graphs
from tether.checkpoint.sqlite import SqliteSaver
from tether.server import create_app
from tether.server.app import warm_up

adapters = []
made = pydantic.TypeAdapter.__init__
def noted(self, *args, **kwargs):
    adapters.append(1)
    made(self, *args, **kwargs)
pydantic.TypeAdapter.__init__ = noted

async def call(app, method, path, body=b""):
    sent, unread = [], [{"type": "http.request", "body": body, "more_body": False}]
    async def receive():
        if unread:
            return unread.pop()
        await asyncio.Event().wait()  # the client stays until the answer
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "headers": [(b"content-type", b"application/json")]}
    await app(scope, receive, send)
    return json.loads(b"".join(m.get("body", b"") for m in sent[1:]) or b"null")

async def main():
    store = SqliteSaver(sys.argv[1])
    app = create_app(graphs(), store, auth=False)
    async with app.router.lifespan_context(app):
        if sys.argv[2] == "warm":
            await warm_up(app)
        modules, adapters[:] = set(sys.modules), []
        await call(app, "GET", "/ok")
        tid = (await call(app, "POST", "/threads", b"{}"))["thread_id"]
        body = json.dumps({"assistant_id": "counter", "input": {"count": 0, "limit": 1}})
        out = await call(app, "POST", f"/threads/{tid}/runs/wait", body.encode())
        print(json.dumps({"out": out, "adapters": len(adapters),
                          "modules": sorted(set(sys.modules) - modules)}))
    store.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("warm", [True, False])
def test_after_warm_up_the_first_requests_and_run_build_and_import_nothing(
        tmp_path: Path, warm: bool) -> None:
    # What FastAPI builds for a route on the first request to reach it (pydantic adapters of
    # its parameters) and what the first run imports are done by `warm_up`, before the server
    # listens, not on the loop while the first clients wait.
    tests = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", FIRST, str(tmp_path / "w.db"),
                           "warm" if warm else "cold"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["out"]["count"] == 1
    if warm:
        assert seen["adapters"] == 0 and seen["modules"] == []
    else:  # what warm_up spares them
        assert seen["adapters"] > 0 and seen["modules"] != []


def test_settle_heap_collects_then_freezes() -> None:
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[0] < 100  # a collection just ran
    finally:
        gc.unfreeze()
