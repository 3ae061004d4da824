"""Fixtures shared by every test: the async backend, stores, and small graph builders."""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether.checkpoint.base import CheckpointStore
from tether.checkpoint.memory import InMemorySaver

pytest_plugins = ["tether.testing.pytest_plugin"]


@pytest.fixture
def anyio_backend() -> str:
    """tether runs on asyncio: every async test runs there."""
    return "asyncio"


def _sqlite(tmp_path: Path) -> CheckpointStore:
    from tether.checkpoint.sqlite import SqliteSaver

    return SqliteSaver(str(tmp_path / "runs.db"))


STORES: dict[str, Callable[[Path], CheckpointStore]] = {
    "memory": lambda _tmp: InMemorySaver(),
    "sqlite": _sqlite,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    """Each store backend in turn (memory, sqlite)."""
    made = STORES[request.param](tmp_path)
    yield made
    close = getattr(made, "close", None)
    if close is not None:
        close()


class Counter(TypedDict):
    """A loop counter and a log every node appends to."""

    n: int
    log: Annotated[list[str], operator.add]


def thread(name: str = "t", **extra: Any) -> dict[str, Any]:
    """A config for thread `name`."""
    return {"configurable": {"thread_id": name}, **extra}


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never depend on a developer's environment.
    monkeypatch.delenv("TETHER_DB", raising=False)


PG_DSN = os.environ.get("TETHER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
