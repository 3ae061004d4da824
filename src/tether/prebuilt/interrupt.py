"""The shapes of a human-in-the-loop request and its answer, as agent UIs exchange them through
`interrupt()` (LangGraph's `HumanInterrupt` family)."""

from __future__ import annotations

from typing import Literal, TypedDict


class HumanInterruptConfig(TypedDict):
    """What the human may do with the request."""

    allow_ignore: bool
    allow_respond: bool
    allow_edit: bool
    allow_accept: bool


class ActionRequest(TypedDict):
    """The action waiting for approval and its arguments."""

    action: str
    args: dict[str, object]


class HumanInterrupt(TypedDict):
    """The value given to `interrupt()`: the request, what is allowed, and why."""

    action_request: ActionRequest
    config: HumanInterruptConfig
    description: str | None


class HumanResponse(TypedDict):
    """The value a human resumes with: accept, ignore, a text response, or an edited action."""

    type: Literal["accept", "ignore", "response", "edit"]
    args: str | ActionRequest | None


__all__ = ["ActionRequest", "HumanInterrupt", "HumanInterruptConfig", "HumanResponse"]
