"""Calling one tool for a `ToolNode`: which tools are plain sync ones (run on tether's threads),
and the one way a call's arguments are filled in and its failure becomes an answer, whether the
tool is called from sync code (`ToolCaller.call`) or async code (`ToolCaller.acall`)."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, Tool
from pydantic import ValidationError

from tether.errors import GraphInterrupt, ParentCommand, is_invalid_resume
from tether.prebuilt.injection import InjectedArgs, ToolRuntime, inject, injected_args
from tether.prebuilt.invocation import passing_commands, unwrap
from tether.prebuilt.tool_errors import (
    INVALID_TOOL_NAME_ERROR_TEMPLATE,
    ErrorPolicy,
    ToolInvocationError,
)
from tether.prebuilt.tool_results import CallOutput, InputKind, ToolAnswers

BUBBLE_UP = (GraphInterrupt, ParentCommand)
"""Control flow a tool may raise (an `interrupt()`, a parent-graph command): never an error."""

_LANGCHAINS = (BaseTool, StructuredTool, Tool)
"""LangChain's own tool classes, whose async run of a tool without a coroutine hands its sync
run to asyncio's default executor (and does nothing else)."""

_RUN_METHODS = ("invoke", "run", "ainvoke", "arun", "_arun")
"""The methods between a call and a tool's `_run`: a plain sync tool overrides none of them."""


def runs_sync(tool: BaseTool) -> bool:
    """Whether `tool` is a plain sync tool: one whose async call would only send its sync
    `invoke` to a thread (a `StructuredTool` or `Tool` without a coroutine, or a `BaseTool`
    subclass with only `_run`), so that calling `invoke` on a thread of one's own is the same.
    """
    if getattr(tool, "coroutine", None) is not None:
        return False
    own = vars(tool)
    for name in _RUN_METHODS:
        if name in own:
            return False
        owner = next(cls for cls in type(tool).__mro__ if name in cls.__dict__)
        if owner not in _LANGCHAINS:
            return False
    return True


class _Ready(NamedTuple):
    """A call about to reach its tool: the tool's runner, its input and its config."""

    runner: BaseTool
    tool_input: dict[str, Any]
    config: RunnableConfig


class ToolCaller:
    """Calls a node's tools: fills in the injected arguments, calls the tool through LangChain
    (sync or async, one shared path around that), checks its answer, and turns a failure into
    an error `ToolMessage` where `handle_tool_errors` says so.

    Args:
        tools_by_name: the node's tools (the original objects, as its users see them).
        errors: the node's `handle_tool_errors`, resolved.
        answers: checks each answer.
    """

    __slots__ = ("_answers", "_errors", "_injected", "_runners", "_tools_by_name")

    def __init__(self, tools_by_name: dict[str, BaseTool], errors: ErrorPolicy,
                 answers: ToolAnswers) -> None:
        self._tools_by_name = tools_by_name
        self._errors = errors
        self._answers = answers
        self._injected = {name: injected_args(tool) for name, tool in tools_by_name.items()}
        self._runners = {name: passing_commands(tool) for name, tool in tools_by_name.items()}

    def call(self, call: ToolCall, tool: BaseTool | None, runtime: ToolRuntime[Any, Any],
             kind: InputKind) -> CallOutput:
        """Call `tool` (the one `call` names, or a wrapper's substitute) from sync code with
        LangChain's `invoke`; its checked answer, or an error message.

        Raises:
            Exception: a failure `handle_tool_errors` does not handle; an `interrupt()` or a
                parent-graph command raised by the tool.
        """
        try:
            ready = self._ready(call, tool, runtime)
            if isinstance(ready, ToolMessage):
                return ready
            response = ready.runner.invoke(ready.tool_input, ready.config)
            return self._answers.normalize(unwrap(response), call, kind)
        except Exception as error:  # noqa: BLE001 - the policy decides (`_failed`)
            return self._failed(call, tool, error)

    async def acall(self, call: ToolCall, tool: BaseTool | None,
                    runtime: ToolRuntime[Any, Any], kind: InputKind) -> CallOutput:
        """`call`, from async code: LangChain's `ainvoke`.

        Raises:
            Exception: as `call`.

        Cancellation:
            Cancelled where the tool awaits (a sync tool's thread runs on, unseen: the node
            runs those with `call` on tether's threads instead); nothing is returned.
        """
        try:
            ready = self._ready(call, tool, runtime)
            if isinstance(ready, ToolMessage):
                return ready
            response = await ready.runner.ainvoke(ready.tool_input, ready.config)
            return self._answers.normalize(unwrap(response), call, kind)
        except Exception as error:  # noqa: BLE001 - the policy decides (`_failed`)
            return self._failed(call, tool, error)

    def _ready(self, call: ToolCall, tool: BaseTool | None,
               runtime: ToolRuntime[Any, Any]) -> _Ready | ToolMessage:
        """What calling `tool` takes, or the answer to a call of no tool."""
        if tool is None:
            return self.unknown_tool(call)
        name = call["name"]
        if self._tools_by_name.get(name) is tool:
            runner = self._runners[name]
        else:  # a wrapper's substitute
            runner = passing_commands(tool)
        filled = inject(call, runtime, self._wanted(call, tool), self._answers.messages_key)
        return _Ready(runner, {**filled, "type": "tool_call"},
                      cast("RunnableConfig", runtime.config))

    def _wanted(self, call: ToolCall, tool: BaseTool) -> InjectedArgs:
        """The injected parameters of `tool` (read once for the node's own tools)."""
        if self._tools_by_name.get(call["name"]) is tool:
            return self._injected[call["name"]]
        return injected_args(tool)

    def _failed(self, call: ToolCall, tool: BaseTool | None, error: Exception) -> ToolMessage:
        """The answer to a call that raised `error` (arguments pydantic refused are the
        model's mistake: a `ToolInvocationError`).

        Raises:
            Exception: control flow (`BUBBLE_UP`), an answer a tool's `interrupt()` refused
                (the resume fails, so that the question can be answered again), and what the
                policy does not handle.
        """
        if isinstance(error, BUBBLE_UP) or is_invalid_resume(error):
            raise error
        if isinstance(error, ValidationError) and tool is not None:
            invalid = ToolInvocationError(call["name"], error, call["args"],
                                          _model_errors(error, self._wanted(call, tool)))
            invalid.__cause__ = error
            error = invalid
        if not self._errors.handles(error):
            raise error
        return self.error_message(call, error)

    def error_message(self, call: ToolCall, error: Exception) -> ToolMessage:
        """The error `ToolMessage` answering `call` that failed with `error` (a handler of
        `handle_tool_errors` may still re-raise)."""
        return ToolMessage(content=self._errors.content(error), name=call["name"],
                           tool_call_id=call["id"], status="error")

    def unknown_tool(self, call: ToolCall) -> ToolMessage:
        """The answer to a call of a tool the node does not have."""
        content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
            requested_tool=call["name"], available_tools=", ".join(self._tools_by_name))
        return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")


def _model_errors(error: ValidationError, wanted: InjectedArgs) -> list[Any]:
    """pydantic's errors about the arguments the model controls, without injected values."""
    injected = set(wanted.state) | set(wanted.hidden)
    injected.update(name for name in (wanted.store, wanted.runtime) if name)
    kept: list[Any] = []
    for detail in error.errors():
        if detail["loc"] and detail["loc"][0] not in injected:
            shown: dict[str, Any] = dict(detail)
            if isinstance(shown.get("input"), dict):
                shown["input"] = {k: v for k, v in shown["input"].items() if k not in injected}
            kept.append(shown)
    return kept


__all__ = ["BUBBLE_UP", "ToolCaller", "runs_sync"]
