"""The TTL sweeper: a daemon thread that deletes a store's expired items every few minutes.

Expired items are never returned whether or not they were swept; sweeping reclaims their space.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("tether.store")

DEFAULT_INTERVAL_MINUTES = 5.0


class Sweeper:
    """Calls `sweep` every `interval` minutes in a thread, until stopped.

    Args:
        sweep: deletes expired items, returns how many.
        name: the store, for the thread's name and the log.
    """

    def __init__(self, sweep: Callable[[], int], name: str) -> None:
        self._sweep = sweep
        self._name = name
        self._lock = threading.Lock()
        # Invariant: _thread is None or alive-or-finishing; _stop is set to end it.
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def start(self, interval_minutes: float) -> concurrent.futures.Future[None]:
        """Start sweeping (a second start while running keeps the first thread).

        Returns:
            A future that resolves when the sweeper stops; cancelling it stops the sweeper.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._done
            self._stop.clear()
            self._done = concurrent.futures.Future()
            self._done.add_done_callback(lambda f: self._stop.set() if f.cancelled() else None)
            self._thread = threading.Thread(target=self._run, args=(interval_minutes * 60.0,),
                                            name=f"tether-store-ttl-{self._name}", daemon=True)
            self._thread.start()
            return self._done

    def stop(self, timeout: float | None = None) -> bool:
        """Stop sweeping; True once the thread has ended (False: still in a sweep after
        `timeout` seconds)."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return True
        self._stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout)
        if thread.is_alive():
            return False
        with self._lock:
            if self._thread is thread:
                self._thread = None
        return True

    def _run(self, interval: float) -> None:
        done = self._done
        while not self._stop.wait(interval):
            try:
                swept = self._sweep()
            except Exception:
                logger.exception("store %s: TTL sweep failed (the next one will retry)",
                                 self._name)
            else:
                if swept:
                    logger.info("store %s: swept %d expired items", self._name, swept)
        if done.set_running_or_notify_cancel():
            done.set_result(None)


__all__ = ["DEFAULT_INTERVAL_MINUTES", "Sweeper"]
