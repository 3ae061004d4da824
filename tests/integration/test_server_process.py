"""`serve()` as a process: keys from a file or the environment, and a SIGTERM that cancels the
runs still going (kind `shutdown`) with their final checkpoints written, so they can resume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.types import RunStatus

TESTS = Path(__file__).resolve().parent.parent
SERVE = """
import sys
from integration.server_graphs import graphs
from tether.server import serve
keys = sys.argv[3] or None
serve(graphs(), db=sys.argv[1], port=int(sys.argv[2]), api_keys_file=keys, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(db: Path, *, keys_file: Path | None = None,
              env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
        port = _free_port()
        environment = {**os.environ, **(env or {}),
                       "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH",
                                                                                 "")])}
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(db), str(port), str(keys_file or "")],
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process.poll() is not None:
                out = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"the server exited: {out}")
            try:
                if httpx.get(url + "/ok", timeout=1).status_code == 200:
                    return process, url
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_sigterm_cancels_running_runs_as_shutdown_with_final_checkpoints(
        spawn: object, tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    process, url = spawn(db, env={"TETHER_API_KEYS": "k1:t1"})  # type: ignore[operator]
    with httpx.Client(base_url=url, headers={"x-api-key": "k1"}) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        run = http.post(f"/threads/{tid}/runs", json={
            "assistant_id": "counter", "input": {"count": 0, "limit": 100_000}}).json()
        deadline = time.monotonic() + 10
        while http.get(f"/threads/{tid}/runs/{run['run_id']}").json()["tether_status"] \
                != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully (the lifespan cancels the runs), then re-raises the signal.
    assert process.wait(30) in (0, -signal.SIGTERM)
    store = SqliteSaver(db)
    try:
        info = store.get_run(run["run_id"])
        assert info is not None and info.status is RunStatus.CANCELLED
        assert info.reason is not None and info.reason.kind == "shutdown"
        assert info.reason.message == "the server is shutting down"
        snapshot = store.load(run["run_id"])
        assert snapshot.values["count"] > 0 and snapshot.next == ("tick",)
    finally:
        store.close()


def test_keys_come_from_the_file_given_to_serve(spawn: object, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# tenants\nfile-key:ops\n")
    _process, url = spawn(tmp_path / "s.db", keys_file=keys,  # type: ignore[operator]
                          env={"TETHER_API_KEYS": "env-key:other"})
    assert httpx.post(url + "/threads", json={}, headers={"x-api-key": "file-key"}
                      ).status_code == 200
    assert httpx.post(url + "/threads", json={}, headers={"x-api-key": "env-key"}
                      ).status_code == 401
