"""SIGINT and SIGTERM during a sync invoke or a sync stream: the run is cancelled with kind
`shutdown`, its final checkpoint written, the process exits; a second signal forces."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tether import RunStatus
from tether.checkpoint.sqlite import SqliteSaver

CHILD = Path(__file__).with_name("shutdown_child.py")


def start(db: Path, mode: str = "polite", call: str = "invoke") -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(CHILD), str(db), mode, call],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait for the child to exit; its stderr."""
    _out, err = proc.communicate(timeout=timeout)
    return err


@pytest.mark.parametrize("call", ["invoke", "stream"])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143),
                                               (signal.SIGINT, -signal.SIGINT)])
def test_a_signal_cancels_the_run_with_its_final_checkpoint(tmp_path: Path, signum: int,
                                                             code: int, call: str) -> None:
    db = tmp_path / "runs.db"
    proc = start(db, call=call)
    proc.send_signal(signum)
    err = finish(proc, 30)
    assert proc.returncode in (code, 1, 130), err
    store = SqliteSaver(db, reconcile=False)
    info = store.get_run("victim")
    assert info is not None and info.status is RunStatus.CANCELLED
    assert info.reason is not None and info.reason.kind == "shutdown"
    assert signal.Signals(signum).name in info.reason.message
    snapshot = store.load("victim")
    assert snapshot.values["n"] >= 3 and snapshot.next == ("step",)
    assert [e.phase for e in store.events("victim")][-1] == "terminate"
    store.close()


def test_a_second_signal_forces_the_exit(tmp_path: Path) -> None:
    proc = start(tmp_path / "runs.db", mode="deaf")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    finish(proc, 10)
    assert time.monotonic() - began < 5
    assert proc.returncode != 0
