"""`interrupt(value, response_schema=...)`, as LangGraph 1.2's: the schema shown with the
question (a type as its JSON Schema), the answer validated and converted by pydantic, and a
refused answer not kept, so the question can be answered again."""

from __future__ import annotations

import importlib
from typing import Any, TypedDict

import pydantic
import pytest
from typing_extensions import TypedDict as PlainTypedDict

from ._support import Lib, Raised


class Decision(pydantic.BaseModel):
    ok: bool
    why: str = ""


class Plan(PlainTypedDict):  # (pydantic needs typing_extensions' before Python 3.12)
    steps: int


class State(TypedDict, total=False):
    got: str


def _graph(lib: Lib, schema: Any, asks: int = 1) -> Any:
    def node(state: State) -> dict[str, str]:
        answers = [lib.interrupt(f"question {i}", response_schema=schema) for i in range(asks)]
        return {"got": " | ".join(repr(a) for a in answers)}

    builder = lib.StateGraph(State)
    builder.add_node("ask", node)
    builder.add_edge(lib.START, "ask")
    return builder.compile(checkpointer=lib.InMemorySaver())


def _conversation(lib: Lib, schema: Any, answers: list[Any], asks: int = 1) -> list[Any]:
    """What a caller sees: the first pause's question and schema, then each answer's outcome
    (the state, or the error and whether it is a refused answer), then the tasks left."""
    errors = importlib.import_module(f"{lib.name}.errors")
    graph, config = _graph(lib, schema, asks), {"configurable": {"thread_id": "t"}}
    asked = graph.invoke({}, config)["__interrupt__"]
    seen: list[Any] = [[(i.value, i.response_schema) for i in asked]]
    for answer in answers:
        try:
            out = graph.invoke(lib.Command(resume=answer), config)
        except Exception as exc:  # noqa: BLE001 - the outcome is compared
            seen.append((Raised(exc), errors.is_invalid_resume(exc)))
        else:
            seen.append({k: ([(i.value, i.response_schema) for i in v]
                             if k == "__interrupt__" else v) for k, v in out.items()})
    state = graph.get_state(config)
    seen.append((state.next, [[(i.value, i.response_schema) for i in t.interrupts]
                              for t in state.tasks]))
    return seen


@pytest.mark.parametrize(("schema", "answers"), [
    (Decision, [{"ok": True, "why": "fine"}]),
    (Decision, [{"ok": "maybe"}, {"nope": 1}, {"ok": False}]),
    (Plan, [{"steps": "x"}, {"steps": 3}]),
    (int, ["7"]),
    ({"type": "object", "properties": {"ok": {"type": "boolean"}}}, [{"ok": "not checked"}]),
    (None, ["anything"]),
], ids=["model", "model-refused-twice", "typeddict", "int", "json-schema", "none"])
def test_an_answer_is_shown_checked_and_refused_as_in_langgraph(
        lib: Lib, lg: Lib, schema: Any, answers: list[Any]) -> None:
    assert _conversation(lib, schema, answers) == _conversation(lg, schema, answers)


def test_a_refused_answer_to_the_second_question_keeps_the_first(lib: Lib, lg: Lib) -> None:
    answers = [{"ok": True}, {"ok": "?"}, {"ok": False}]
    got = _conversation(lib, Decision, answers, asks=2)
    assert got == _conversation(lg, Decision, answers, asks=2)
    assert got[-2] == {"got": "Decision(ok=True, why='') | Decision(ok=False, why='')"}


def test_a_refusal_is_a_validation_error_marked_as_such(lib: Lib) -> None:
    errors = importlib.import_module(f"{lib.name}.errors")
    graph, config = _graph(lib, Decision), {"configurable": {"thread_id": "t"}}
    graph.invoke({}, config)
    with pytest.raises(pydantic.ValidationError) as refused:
        graph.invoke(lib.Command(resume={"ok": []}), config)
    assert errors.is_invalid_resume(refused.value)
    assert not errors.is_invalid_resume(ValueError("another"))
