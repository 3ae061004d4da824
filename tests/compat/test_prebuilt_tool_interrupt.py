"""A tool that asks the human (`interrupt()`) inside `create_react_agent`: the pause, its
value, and the resumed conversation are LangGraph's, whether the tool's call is alone in its
model turn (it runs in its task) or beside another (each call is then a unit of the run)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import tool

from ._agents import LANGGRAPH_DEPRECATIONS, add, asks, call, model, views
from ._support import Lib, thread

pytestmark = pytest.mark.filterwarnings(LANGGRAPH_DEPRECATIONS)


def _approve_tool(lib: Lib, ran: list[str]) -> Any:
    @tool
    def approve(item: str) -> str:
        """Ask a human to approve an item."""
        ran.append(item)
        answer = lib.interrupt({"approve": item})
        return f"{item}: {answer}"

    return approve


@pytest.mark.parametrize("beside", [False, True], ids=["alone", "beside-another-call"])
def test_a_tool_interrupt_pauses_the_agent_and_its_resume_answers_the_call(
        lib: Lib, lg: Lib, beside: bool) -> None:
    def run(library: Lib) -> Any:
        ran: list[str] = []
        calls = [call("approve", "c1", item="invoice")]
        if beside:
            calls.append(call("add", "c2", a=1, b=2))
        agent = library.prebuilt.create_react_agent(
            model(asks(*calls), "approved."), [_approve_tool(library, ran), add],
            checkpointer=library.InMemorySaver())
        config = thread("approval")
        paused = agent.invoke({"messages": [("user", "pay the invoice")]}, config)
        asked = [i.value for i in paused["__interrupt__"]]
        done = agent.invoke(library.Command(resume="yes"), config)
        return asked, views(done["messages"]), ran

    expected = run(lg)
    assert expected[0] == [{"approve": "invoice"}]
    assert ("tool", "invoice: yes") in [m[:2] for m in expected[1]]
    assert expected[2] == ["invoice", "invoice"]  # asked, then run again with the answer
    assert run(lib) == expected


def test_a_tool_whose_interrupt_refuses_an_answer_is_asked_again_as_in_langgraph(
        lib: Lib, lg: Lib) -> None:
    # The refusal is not the model's mistake: the resume fails (no error `ToolMessage`), and
    # the next answer is the one the tool gets.
    from pydantic import BaseModel, ValidationError

    class Verdict(BaseModel):
        approved: bool

    def run(library: Lib) -> Any:
        errors = __import__(f"{library.name}.errors", fromlist=["is_invalid_resume"])

        @tool
        def approve(item: str) -> str:
            """Ask a human to approve an item."""
            verdict = library.interrupt({"approve": item}, response_schema=Verdict)
            return f"{item}: {verdict.approved}"

        agent = library.prebuilt.create_react_agent(
            model(asks(call("approve", "c1", item="invoice")), "done."), [approve],
            checkpointer=library.InMemorySaver())
        config = thread("verdict")
        paused = agent.invoke({"messages": [("user", "pay the invoice")]}, config)
        schema = paused["__interrupt__"][0].response_schema
        with pytest.raises(ValidationError) as refused:
            agent.invoke(library.Command(resume={"approved": "perhaps"}), config)
        done = agent.invoke(library.Command(resume={"approved": True}), config)
        return schema, errors.is_invalid_resume(refused.value), views(done["messages"])

    expected = run(lg)
    assert expected[1] is True
    assert ("tool", "invoice: True") in [m[:2] for m in expected[2]]
    assert run(lib) == expected
