"""Fixtures: `lib` runs a test once per library; `lg` is always LangGraph, the reference."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ._support import LIBRARIES, Lib, load

# Running from a checkout without `pip install -e .` still tests this tree's tether.
_SRC = Path(__file__).resolve().parents[2] / "src"
if importlib.util.find_spec("tether") is None and (_SRC / "tether" / "__init__.py").exists():
    sys.path.insert(0, str(_SRC))


@pytest.fixture(params=LIBRARIES)
def lib(request: pytest.FixtureRequest) -> Lib:
    """The library under test. A missing or broken tether makes its tests fail, never skip."""
    pending = request.node.get_closest_marker("tether_pending")
    if pending is not None and request.param == "tether":
        request.applymarker(pytest.mark.xfail(strict=True, reason=pending.args[0]))
    return load(request.param)


@pytest.fixture
def lg() -> Lib:
    """LangGraph itself: each test computes its expected output with it."""
    return load("langgraph")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
