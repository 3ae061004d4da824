"""The web console in a real browser (Debian's Chromium through Playwright), on a real server in
both of its modes: SQLite (runs in the server's process) and Postgres (runs queued for a
`tether worker` process). Fixtures `browser`, `console` and `tab` are in `conftest.py`.

`TETHER_CONSOLE_SHOTS=<dir>` makes the SQLite-mode tests save the screenshots the docs show.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tether.checkpoint.base import CheckpointStore
from tether.server import create_app
from tether.types import RunInfo, RunStatus

from .console_graphs import NAMES, graphs
from .server_graphs import KEYS, LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TESTS = Path(__file__).resolve().parent.parent
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_URL = "/static/__test_axe.js"
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    return None


@dataclass
class Console:
    """A served console: its address, its store, and a client with tenant A's key."""

    url: str
    store: CheckpointStore
    mode: str
    key: str = "key-a"
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, headers={"x-api-key": self.key}, timeout=30)

    def start(self, graph: str, graph_input: Any, *, thread_id: str | None = None,
              **extra: Any) -> dict[str, Any]:
        """Start a run of `graph` (on a new thread unless given); its record."""
        tid = thread_id or self.http.post("/threads", json={}).json()["thread_id"]
        answer = self.http.post(f"/threads/{tid}/runs", json={
            "assistant_id": graph, "input": graph_input, **extra})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def checkpointed(self, run_id: str, timeout: float = 20) -> RunInfo:
        """The run's record once it points at a checkpoint (its first step is stored)."""
        deadline = time.monotonic() + timeout
        while (info := self.store.get_run(run_id)) is None or info.checkpoint_id is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} has no checkpoint")
            time.sleep(0.02)
        return info

    def settled(self, run_id: str, *statuses: RunStatus, timeout: float = 20) -> RunInfo:
        """The run's record once the store says it is in one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.store.get_run(run_id)
            if info is not None and info.status in statuses:
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is {info and info.status}, not {statuses}")
            time.sleep(0.02)

    def shoot(self, page: Any, name: str) -> None:
        """Save a screenshot for the docs (SQLite mode, with `TETHER_CONSOLE_SHOTS` set)."""
        where = os.environ.get("TETHER_CONSOLE_SHOTS")
        if where and self.mode == "sqlite":
            Path(where).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(where) / f"console-{name}.png"))


@contextlib.contextmanager
def sqlite_console(db: Path) -> Iterator[Console]:
    """The console on a SQLite file: runs run in the server's process."""
    from tether.checkpoint.sqlite import SqliteSaver

    store = SqliteSaver(db)
    try:
        with LiveServer(create_app(graphs(), store, api_keys=KEYS)) as server:
            console = Console(server.url, store, "sqlite")
            yield console
            console.http.close()
    finally:
        store.close()


@contextlib.contextmanager
def postgres_console(workdir: Path) -> Iterator[Console]:
    """The console on Postgres: runs are queued for a `tether worker` process."""
    from conformance.conftest import fresh_schema
    from tether.checkpoint.postgres import PostgresSaver

    with fresh_schema() as (dsn, schema):
        store = PostgresSaver(dsn, schema=schema)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(TESTS), os.environ.get("PYTHONPATH", "")])}
        refs = [f"integration.console_graphs:{name}" for name in NAMES]
        with (workdir / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tether", "worker", *refs, "--db", dsn, "--schema",
                 schema, "--poll", "0.05", "--lease", "10", "--concurrency", "4"],
                env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            with LiveServer(create_app(graphs(), store, api_keys=KEYS)) as server:
                console = Console(server.url, store, "postgres")
                yield console
                console.http.close()
        finally:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
            store.close()


class Tab:
    """A page of the console in its own browser context, with the key entered; uncaught
    errors and console errors are collected (a test fails on any)."""

    def __init__(self, browser: Any, console: Console, viewport: dict[str, int]) -> None:
        self.console = console
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.set_default_timeout(10_000)

    def _console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def open(self, hash_path: str = "", *, key: str | None = None) -> Any:
        """Load the console at `#<hash_path>` and give it the key."""
        self.page.goto(f"{self.console.url}/#{hash_path}")
        self.page.fill("#api-key", self.console.key if key is None else key)
        self.page.click("#key-form button")
        return self.page

    def run(self, run_id: str, tab: str = "overview") -> Any:
        """Show one run (the address the page itself uses)."""
        suffix = f"?tab={tab}" if tab != "overview" else ""
        self.page.evaluate(f"location.hash = '#/run/{run_id}{suffix}'")
        self.page.wait_for_selector(f'#run-id:text-is("{run_id}")')
        return self.page

    def axe(self) -> list[dict[str, Any]]:
        """Serious and critical accessibility violations on the page as it is now (axe-core,
        served from the page's own origin so that its CSP allows it)."""
        if self.page.evaluate("typeof window.axe") == "undefined":
            self.page.add_script_tag(url=AXE_URL)
            self.page.wait_for_function("typeof window.axe !== 'undefined'")
        found = self.page.evaluate("async () => (await axe.run(document, {resultTypes: "
                                   "['violations']})).violations.map(v => ({id: v.id, impact: "
                                   "v.impact, help: v.help, nodes: v.nodes.map(n => "
                                   "n.target.join(' '))}))")
        return [v for v in found if v["impact"] in ("serious", "critical")]

    def serve_axe(self) -> None:
        """Let `axe()` load axe-core from the console's origin."""
        body = AXE.read_text(encoding="utf-8")
        self.page.route(f"**{AXE_URL}", lambda route: route.fulfill(
            status=200, content_type="application/javascript", body=body))

    def overflow(self) -> int:
        """How many pixels the page is wider than the window (0 when the layout holds)."""
        return int(self.page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth"))

    def close(self) -> None:
        self.context.close()


def require_browser() -> None:
    """Skip (or, with `TETHER_REQUIRE_BROWSER=1`, fail) when no browser can run."""
    missing = browser_missing()
    if missing is not None:
        if os.environ.get("TETHER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TETHER_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
