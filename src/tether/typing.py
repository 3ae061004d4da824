"""LangGraph's type variables (`langgraph.typing`), for programs that annotate with them."""

from __future__ import annotations

from typing import Any, TypeVar

StateT = TypeVar("StateT")
"""A graph's state type."""
StateT_co = TypeVar("StateT_co", covariant=True)
StateT_contra = TypeVar("StateT_contra", contravariant=True)
ContextT = TypeVar("ContextT")
"""A graph's run context type (`invoke(..., context=...)`)."""
ContextT_contra = TypeVar("ContextT_contra", contravariant=True)
InputT = TypeVar("InputT")
"""A graph's input type."""
OutputT = TypeVar("OutputT")
"""A graph's output type."""
NodeInputT = TypeVar("NodeInputT")
"""A node's input type."""
NodeInputT_contra = TypeVar("NodeInputT_contra", contravariant=True)
StateLike = Any
"""Whatever can be a state: a TypedDict, a dataclass, a pydantic model."""

__all__ = ["ContextT", "ContextT_contra", "InputT", "NodeInputT", "NodeInputT_contra",
           "OutputT", "StateLike", "StateT", "StateT_co", "StateT_contra"]
