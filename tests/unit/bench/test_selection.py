"""`python -m bench --only`: every filter given counts, repeated or comma-separated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _listed(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "bench", "--list", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    return [line.split()[1] for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("args", [("--only", "start1000", "--only", "cancel1000"),
                                  ("--only", "start1000,cancel1000")])
def test_every_only_filter_selects(args: tuple[str, ...]) -> None:
    assert sorted(_listed(*args)) == ["cancel1000:p50", "start1000:p50"]


def test_a_row_whose_name_has_a_comma_is_selected_by_its_name() -> None:
    assert _listed("--only", "chunk-delay[100x10/s,redis]:p99,start1000") == [
        "start1000:p50", "chunk-delay[100x10/s,redis]:p99"]


def test_an_unknown_name_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--list", "--only", "no-such-row"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no-such-row" in done.stderr
