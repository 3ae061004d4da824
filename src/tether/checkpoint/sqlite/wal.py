"""WAL checkpoints off the committing thread: copying the log into the database file, and its
`fsync`s, happen in a background thread instead of inside some unlucky superstep's commit.

SQLite's automatic checkpoint runs in whichever commit crosses 1000 log pages; with checkpoints
per superstep that commit took several milliseconds (two `fsync`s and the copy), which is most
of a superstep's mean cost and all of its tail. Here the store's connection has automatic
checkpoints off, and after every `every` commits a helper thread with its own connection runs a
`PASSIVE` checkpoint, which never blocks the store's readers or writers. The thread exits when
idle and starts again when needed. Durability is unchanged: a commit is in the log, which the
next opener replays; with `synchronous=NORMAL` the log reaches the disk at the checkpoint.

A passive checkpoint copies only the frames committed before it began, and the log starts over
only once every frame was copied; under steady writes that never happens, and the log (with its
index, mapped in memory) would grow without end. So every `every` commits the writer itself
looks at the log file's size (one `stat`), and once it holds `LOG_LIMIT_FRAMES` the writing
connection takes a `TRUNCATE` checkpoint right then (`committed` answers True): the writer waits
for it (a few milliseconds, once per that many frames) and the log file is emptied. Neither the
finding nor the checkpoint is left to the helper. Its checkpoint would have to win the write lock
from a writer that commits back to back, and SQLite's busy handler only polls for it, so under
steady writes it lost for as long as the writes went on (the log grew to 14 MB past a 1 MB limit
in 1500 supersteps). And a helper slowed by a loaded disk found the log full late: the log grew
by as many supersteps as its own checkpoint took. (A `RESTART` would keep the file at its largest
size: it would stay as big as it ever grew.)

Writing over the log's old frames costs a commit less than growing the file (measured here: 40
against 50 µs of CPU for a superstep's transaction; growing a file allocates its blocks and
changes its size, which the file system journals). So when commits pause for `IDLE_CHECKPOINT`
seconds after at least `IDLE_MIN_COMMITS`, the helper copies the whole log (no writer races it
then) without truncating it, so that the next burst writes over the log from its start instead
of growing it.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from tether.checkpoint.sqlite import _sql

IDLE_EXIT = 5.0
"""Seconds without work after which the helper thread ends."""
IDLE_CHECKPOINT = 0.05
"""Seconds without a commit after which the helper copies the whole log, so that the next
commit starts it over."""
IDLE_MIN_COMMITS = 16
"""Commits since the last checkpoint below which a pause is not worth one (its two `fsync`s):
sparse writes are left to the every-`every` checkpoint."""
LOG_LIMIT_FRAMES = 4096
"""Log frames (pages; 16 MiB of 4 KiB pages) past which the writer empties the log."""
_FRAME_HEADER = 24
"""Bytes a log frame adds to its page; the log file is a 32-byte header and its frames."""


class WalCheckpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on `path` every `every` commits and when commits
    pause, in a thread.

    Args:
        path: the database file.
        every: commits between checkpoints.
        busy_timeout: seconds the helper waits for a lock before giving up on a checkpoint.
        page_size: the database's page size, to tell the log's frames from its file size.
    """

    def __init__(self, path: str, *, every: int = 200, busy_timeout: float = 5.0,
                 page_size: int = 4096) -> None:
        self._path = path
        self._log = f"{path}-wal"
        self._frame = page_size + _FRAME_HEADER
        self._every = every
        self._busy_timeout = busy_timeout
        self._commits = 0
        # Commits counted (under the store lock; the helper reads it, and a stale read only
        # delays an idle checkpoint), and their count when the helper last began one: only a
        # checkpoint no writer races copies the whole log.
        self._count = 0
        self._settled = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        # Invariant: _thread is None or a thread that will see _wake before it exits (it
        # checks _wake under _lock before clearing _thread).
        self._thread: threading.Thread | None = None
        self._closed = False
        # The log was found past LOG_LIMIT_FRAMES and the writer has not emptied it yet.
        self._over = False

    def committed(self, transactions: int = 1) -> bool:
        """Count a commit of `transactions` transactions (a group commit counts each, as the
        log grows by what they wrote); every `every` of them, look at the log's size and wake
        the helper. Called under the store lock, right after the writing connection committed.

        Returns:
            True when the log has passed its limit: the caller, holding the write lock, then
            takes a `TRUNCATE` checkpoint on its connection (`CHECKPOINT_TRUNCATE`).
        """
        self._count += transactions
        self._commits += transactions
        if self._commits < self._every:
            return self._over
        self._commits = 0
        self._over = self._log_frames() >= LOG_LIMIT_FRAMES
        if self._over:
            # The writer empties the log now; a passive checkpoint begun by the helper at the
            # same moment would hold the checkpoint lock and make the writer's fail.
            return True
        with self._lock:
            if self._closed:
                return False
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tether-sqlite-wal",
                                                daemon=True)
                self._thread.start()
        return False

    def emptied(self) -> None:
        """The writer's `TRUNCATE` checkpoint succeeded. Until it does (the helper's checkpoint
        holds the checkpoint lock, another process reads), `committed` answers True after every
        commit, and the writer tries again: a try that cannot have the lock fails at once."""
        self._over = False

    def close(self, timeout: float = 5.0) -> None:
        """Stop the helper (it finishes a checkpoint in progress)."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                               timeout=self._busy_timeout)
        try:
            while self._next():
                try:
                    conn.execute(_sql.CHECKPOINT_PASSIVE).fetchone()
                except sqlite3.OperationalError:
                    continue  # busy: the next round will catch up
        finally:
            conn.close()

    def _log_frames(self) -> int:
        """How many frames the log file holds (0 when there is none yet)."""
        try:
            return os.stat(self._log).st_size // self._frame
        except OSError:
            return 0

    def _next(self) -> bool:
        """Wait for work: `every` commits, or a pause in commits after some; False when the
        helper should end (closed, or idle for `IDLE_EXIT`)."""
        while True:
            seen = self._count
            due = seen - self._settled >= IDLE_MIN_COMMITS
            quiet = IDLE_CHECKPOINT if due else IDLE_EXIT
            woken = self._wake.wait(quiet)
            with self._lock:
                if self._closed:
                    self._thread = None
                    return False
                if woken or self._wake.is_set():
                    self._wake.clear()
                    return True
                if self._count != seen:
                    continue  # commits go on: not a pause
                if due:
                    self._settled = seen  # a pause after commits: copy the whole log
                    return True
                # Idle for IDLE_EXIT: end (a few commits left wait for the periodic checkpoint,
                # which starts the helper again).
                self._thread = None
                return False


__all__ = ["WalCheckpointer"]
