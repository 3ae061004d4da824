"""The graphs a worker serves: imported from `module:attr` (then compiled onto the worker's
store under the name their runs are queued with: `CompiledStateGraph.rebind`)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from tether.graph.compiled import CompiledStateGraph


def load(ref: str) -> CompiledStateGraph:
    """Import `module:attr` (the current directory is on the path); a `StateGraph` builder is
    compiled.

    Raises:
        ValueError: the reference is malformed, or its attribute is missing.
        TypeError: it names something that is not a tether graph.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{ref!r} is not of the form module:attribute (e.g. app.graphs:graph)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not isinstance(target, CompiledStateGraph) and hasattr(target, "compile"):
        target = target.compile()
    if not isinstance(target, CompiledStateGraph):
        raise TypeError(f"{ref!r} is a {type(target).__name__}, not a tether graph")
    return target


def default_name(ref: str) -> str:
    """The name runs of `ref` are queued under by default: its attribute's last part (as
    `tether serve` names the graph it serves)."""
    return ref.rpartition(":")[2].rpartition(".")[2]


__all__ = ["default_name", "load"]
