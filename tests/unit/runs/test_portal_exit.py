"""A process whose threads ran graphs from sync code exits: the per-thread private loops of
threads still alive are dropped while the interpreter finalizes, when no thread can start."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import asyncio, threading, time
    from tether.runs import portal

    def worker():
        async def main():
            await asyncio.to_thread(lambda: None)  # the loop's default executor is used
        portal.run_sync(lambda private: main())
        started.set()
        time.sleep(3600)  # still alive when the process exits

    started = threading.Event()
    threading.Thread(target=worker, daemon=True).start()
    assert started.wait(30)
    print("exiting")
""")


def test_a_process_exits_while_a_thread_holding_a_private_loop_is_alive() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          timeout=50, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "exiting"
