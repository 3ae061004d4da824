"""A refused answer (`interrupt(response_schema=...)`) is withdrawn in every store: the pause is
open again, and the next answer takes the refused one's place, across reopening the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pydantic
import pytest

from tether.checkpoint.base import CheckpointStore
from tether.constants import RESUME, WITHDRAWN
from tether.errors import is_invalid_resume
from tether.graph import START, StateGraph
from tether.types import Command, interrupt

from .conftest import Backend, close


class Decision(pydantic.BaseModel):
    ok: bool


class State(TypedDict, total=False):
    got: list[bool]


def _graph(store: CheckpointStore) -> Any:
    def ask(state: State) -> dict[str, list[bool]]:
        first = interrupt("first?", response_schema=Decision)
        second = interrupt("second?", response_schema=Decision)
        return {"got": [first.ok, second.ok]}

    return StateGraph(State).add_node("ask", ask).add_edge(START, "ask").compile(
        checkpointer=store)


CONFIG = {"configurable": {"thread_id": "t"}}


def test_a_refused_answer_is_withdrawn_and_the_next_one_takes_its_place(
        store: CheckpointStore, backend: Backend, tmp_path: Path) -> None:
    graph = _graph(store)
    graph.invoke({}, CONFIG)
    assert graph.invoke(Command(resume={"ok": True}), CONFIG)["__interrupt__"][0].value == \
        "second?"
    for refused in ({"ok": "no way"}, {"ok": []}):
        with pytest.raises(pydantic.ValidationError) as raised:
            graph.invoke(Command(resume=refused), CONFIG)
        assert is_invalid_resume(raised.value)
    head = store.get_checkpoint("t")
    assert head is not None
    kept = sorted((w.idx, w.channel, w.value) for w in head.pending_writes
                  if w.channel in (RESUME, WITHDRAWN))
    assert kept == [(-11, WITHDRAWN, None), (-10, RESUME, {"ok": True})]
    state = graph.get_state(CONFIG)
    assert [[i.value for i in t.interrupts] for t in state.tasks] == [["second?"]]
    other = backend.reopen(store, tmp_path) if backend.reopen is not None else store
    try:  # (another handle on the same data, where the backend has one)
        assert _graph(other).invoke(Command(resume={"ok": False}), CONFIG) == {
            "got": [True, False]}
    finally:
        if other is not store:
            close(other)
