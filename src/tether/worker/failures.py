"""`FailureLog`: a failure's traceback is logged once; its repeats as one line with a count.

A run that cannot start fails the same way in every worker that claims it, and a database that
is down fails every round of every loop: one traceback says it, a count says how often.
"""

from __future__ import annotations

import logging
import traceback
from collections import OrderedDict

KEPT = 256
"""Distinct failures remembered (the oldest forgotten first)."""


class FailureLog:
    """Logs failures to `logger`, each distinct one with its traceback the first time only.

    Two failures are the same when they have the same type, message and frames.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._counts: OrderedDict[str, int] = OrderedDict()

    def log(self, what: str, exc: BaseException) -> int:
        """Log `exc` as the cause of `what` (a sentence: "run 12 could not be started");
        how many times this failure was seen, this one included."""
        key = _signature(exc)
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > KEPT:
            self._counts.popitem(last=False)
        if count == 1:
            self._logger.error("%s", what, exc_info=exc)
        else:
            self._logger.warning("%s: %s: %s (the same failure %d times; its traceback was "
                                 "logged the first time)", what, type(exc).__name__, exc, count)
        return count


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ";".join(f"{f.filename}:{f.lineno}" for f in frames)
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} @ {where}"


__all__ = ["FailureLog"]
