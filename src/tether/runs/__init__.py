"""Runs: handles, the state machine's records, the registry, finalisation, the sync portal."""

from tether.runs.handle import Run

__all__ = ["Run"]
