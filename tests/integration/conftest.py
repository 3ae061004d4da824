"""Fixtures of the browser tests: Chromium (`browser`), the console served in each mode
(`console`: SQLite, Postgres with a worker), and a fresh page on it (`tab`, `phone_tab`); and of
the worker tests: `tether worker` processes on a fresh Postgres schema (`cluster`); and a
durable run store on SQLite and Postgres (`saver`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.conftest import fresh_schema
from tether.checkpoint.base import CheckpointStore
from tether.checkpoint.sqlite import SqliteSaver

from .console_page import (
    ARGS,
    CHROMIUM,
    PHONE,
    WIDE,
    Console,
    Tab,
    postgres_console,
    require_browser,
    sqlite_console,
)
from .worker_cluster import Cluster


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (never a downloaded browser)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def console(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console on a real server: SQLite (runs in the server) or Postgres (a worker)."""
    require_browser()
    where = tmp_path_factory.mktemp(f"console-{request.param}")
    opened = sqlite_console(where / "console.db") if request.param == "sqlite" \
        else postgres_console(where)
    with opened as served:
        yield served


def _tab(browser: Any, console: Console, viewport: dict[str, int]) -> Iterator[Tab]:
    made = Tab(browser, console, viewport)
    try:
        yield made
        assert made.errors == [], made.errors
    finally:
        made.close()


@pytest.fixture
def tab(browser: Any, console: Console) -> Iterator[Tab]:
    """A page of the console at 1280 by 800; the test fails on any script error in it."""
    yield from _tab(browser, console, WIDE)


@pytest.fixture
def phone_tab(browser: Any, console: Console) -> Iterator[Tab]:
    """A page of the console at 390 by 844."""
    yield from _tab(browser, console, PHONE)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """`tether worker` processes on a fresh Postgres schema (started by the test), killed at
    the end."""
    with fresh_schema() as (dsn, schema):
        made = Cluster(dsn, schema, tmp_path)
        try:
            yield made
        finally:
            made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    """A durable run store: a SQLite file, then a fresh Postgres schema."""
    if request.param == "sqlite":
        made = SqliteSaver(str(tmp_path / "runs.db"))
        yield made
        made.close()
        return
    from tether.checkpoint.postgres import PostgresSaver

    with fresh_schema() as (dsn, schema):
        pg = PostgresSaver(dsn, schema=schema)
        yield pg
        pg.close()
