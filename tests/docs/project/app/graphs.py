"""`app.graphs:graph`, the graph the docs' commands run: it researches a topic (slowly: half a
second, time enough to cancel it or let a timeout pass), writes a draft, and asks a person
to approve it before publishing (`interrupt`, answered with `--resume-value '"approved"'`)."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from tether.graph import START, StateGraph
from tether.types import interrupt


class Piece(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    draft: str
    verdict: str
    published: bool


async def research(state: Piece) -> dict[str, Any]:
    await asyncio.sleep(0.5)
    return {"notes": [f"three sources on {state['topic']}"]}


def write(state: Piece) -> dict[str, Any]:
    return {"draft": f"A short piece on {state['topic']}, from {len(state['notes'])} note(s)."}


def review(state: Piece) -> dict[str, Any]:
    verdict = interrupt({"question": "publish this draft?", "draft": state["draft"]})
    return {"verdict": verdict}


def publish(state: Piece) -> dict[str, Any]:
    return {"published": state["verdict"] == "approved"}


builder = StateGraph(Piece).add_sequence([research, write, review, publish])
graph = builder.add_edge(START, "research").compile()
