"""Cancelled runs leave nothing behind: after waves of a thousand runs cancelled at random
moments, the process holds what it held after the first wave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tether.engine.to_thread import default_pool

PROGRAM = Path(__file__).with_name("cancel_waves.py")
WAVES, RUNS = 10, 1000
TOLERANCE = 1.05


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ten_waves_of_cancelled_runs_hold_what_the_first_held(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(PROGRAM), str(tmp_path / "waves.db"), str(WAVES),
                           str(RUNS)], capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    waves = [json.loads(line) for line in done.stdout.splitlines()]
    assert [w["cancelled"] for w in waves] == [RUNS] * WAVES
    first = waves[0]
    for wave in waves[1:]:
        for what in ("rss_kb", "tasks", "threads", "fds"):
            assert wave[what] <= first[what] * TOLERANCE, (what, first, wave)
        # Whether a node's thread stopped within its grace (kept, idle, for the next sync
        # node) or was abandoned (it leaves when its node returns) is timing; the pool holds
        # no more than its bound.
        assert wave["pool_threads"] <= default_pool().max_threads, wave
