"""The web page in a real browser (Debian's Chromium through Playwright): a long run shows up
running, Stop cancels it for real within a second, Resume continues it — with and without auth.

Skipped when Chromium or Playwright is missing, unless `TETHER_REQUIRE_BROWSER=1` (CI), which
turns a missing browser into a failure. Never downloads a browser.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.types import RunStatus

from .server_graphs import LiveServer, serving

LONG = {"count": 0, "limit": 100_000}

pytestmark = pytest.mark.browser


@pytest.fixture(params=["auth", "no-auth"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer,
                                                                             SqliteSaver, str]]:
    options: dict[str, Any] = {} if request.param == "auth" else {"auth": False}
    key = "key-a" if request.param == "auth" else ""
    with serving(tmp_path / "server.db", **options) as (server, store):
        yield server, store, key


def _start_long_run(http: httpx.Client) -> dict[str, Any]:
    tid = http.post("/threads", json={}).json()["thread_id"]
    run = http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter", "input": LONG})
    assert run.status_code == 200, run.text
    return dict(run.json())


def _row(run_id: str, status: str) -> str:
    return f'tr[data-run-id="{run_id}"][data-status="{status}"]'


def test_stop_on_the_page_cancels_the_run_and_resume_continues_it(
        browser: Any, live: tuple[LiveServer, SqliteSaver, str]) -> None:
    server, store, key = live
    headers = {"x-api-key": key} if key else {}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        run = _start_long_run(http)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        if key:
            page.fill("#api-key", key)
            page.click("#key-form button")
        else:
            assert page.is_hidden("#key-form")
        page.wait_for_selector(_row(run["run_id"], "running"), timeout=5000)
        page.click(f'tr[data-run-id="{run["run_id"]}"] td.reason')
        page.wait_for_selector('#graph g[data-node="tick"].running', timeout=5000)
        page.fill("#stop-reason", "stopped from the page")
        clicked = time.monotonic()
        page.click("#stop-button")
        page.wait_for_selector(_row(run["run_id"], "cancelled"), timeout=1000)
        assert time.monotonic() - clicked < 1.0
        page.wait_for_selector('#run-status[data-status="cancelled"]', timeout=1000)
        assert "stopped from the page" in (page.text_content("#run-banner") or "")

        ended = http.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}").json()
        assert ended["tether_status"] == "cancelled"
        assert ended["cancel_reason"] == "stopped from the page"
        stored = store.get_run(run["run_id"])
        assert stored is not None and stored.status is RunStatus.CANCELLED
        final = store.get_checkpoint(run["thread_id"], "", stored.checkpoint_id)
        assert final is not None and final.values["count"] > 0
        # Inside a `tick`, or (now and then) between steps while one is checkpointed.
        assert store.load(run["run_id"]).cancelled_tasks in (("tick",), ())
        page.click("#tab-audit")
        page.wait_for_selector("#panel-audit tr[data-phase=terminate]", timeout=2000)

        page.click("#resume-button")
        page.wait_for_selector(f'#run-id:not(:text-is("{run["run_id"]}"))', timeout=5000)
        page.wait_for_selector('#run-status[data-status="running"]', timeout=5000)
        resumed_id = page.text_content("#run-id")
        assert resumed_id and resumed_id != run["run_id"]
        resumed = http.get(f"/threads/{run['thread_id']}/runs/{resumed_id}").json()
        assert resumed["thread_id"] == run["thread_id"]
        page.wait_for_selector(_row(resumed_id, "running"), timeout=2000)
        assert errors == []
        page.close()


def test_the_page_asks_for_a_key_and_shows_nothing_without_one(
        browser: Any, tmp_path: Path) -> None:
    with serving(tmp_path / "server.db") as (server, _store), \
            httpx.Client(base_url=server.url, headers={"x-api-key": "key-a"}) as http:
        run = _start_long_run(http)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#connection >> text=API key", timeout=5000)
        assert page.is_visible("#key-form")
        assert page.locator(f'tr[data-run-id="{run["run_id"]}"]').count() == 0
        page.fill("#api-key", "key-b")
        page.click("#key-form button")
        page.wait_for_selector("#no-runs:visible", timeout=5000)
        assert page.locator(f'tr[data-run-id="{run["run_id"]}"]').count() == 0
        page.close()
