"""The cancel sweep as pytest fixtures. Enable it in a `conftest.py` at the root of your tests:

    pytest_plugins = ["tether.testing.pytest_plugin"]

`cancel_sweep` (sync tests) and `acancel_sweep` (async tests) are `tether.testing`'s functions
with the table of points printed into the test's captured output, so that a failing test shows
which points were tried and the first counterexample. Only pytest imports this module: pytest
is never a dependency of tether itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from tether.testing import sweep


@pytest.fixture
def cancel_sweep() -> Any:
    """`tether.testing.cancel_sweep`: cancel a graph's run at each of its cancel points."""
    return sweep.cancel_sweep


@pytest.fixture
def acancel_sweep() -> Any:
    """`tether.testing.acancel_sweep`, for async tests."""
    return sweep.acancel_sweep
