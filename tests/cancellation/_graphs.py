"""Graphs and helpers shared by the cancellation tests."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from tether.graph import END, START, StateGraph


class Count(TypedDict):
    """The seed example's state."""

    count: int


class Log(TypedDict):
    """A log every node appends to."""

    log: Annotated[list[str], operator.add]


@dataclass
class Gate:
    """Lets a test hold a node at a point and learn when it got there."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> None:
        self.reached.set()
        await self.release.wait()


def looping(node: Callable[..., Any], *, until: int = 10_000) -> Any:
    """The seed example's shape: one node that loops on `count` until `until`."""
    b = StateGraph(Count).add_node("work", node)
    b.set_entry_point("work")
    b.add_conditional_edges("work", lambda s: END if s["count"] >= until else "work",
                            {"work": "work", END: END})
    return b


def thread_config(thread_id: str = "t", **extra: Any) -> dict[str, Any]:
    """A config on `thread_id`."""
    return {"configurable": {"thread_id": thread_id}, **extra}


def phases(events: list[Any]) -> list[str]:
    """Phase names of an audit log, in order."""
    return [e.phase for e in events]


START_ = START
