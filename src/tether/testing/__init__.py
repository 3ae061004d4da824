"""Testing a graph's stops: `cancel_sweep` cancels a run at every cancel point of its nodes and
checks what each stop leaves behind (a pytest fixture: `tether.testing.pytest_plugin`)."""

from tether.testing.probe import CancelPoint
from tether.testing.sweep import PointResult, SweepResult, acancel_sweep, cancel_sweep

__all__ = ["CancelPoint", "PointResult", "SweepResult", "acancel_sweep", "cancel_sweep"]
