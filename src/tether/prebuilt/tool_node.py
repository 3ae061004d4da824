"""`ToolNode` (runs the tool calls of the model's last message, in parallel) and
`tools_condition` (routes to it while there are calls), with LangGraph's names and behaviour."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal, TypedDict, cast

import anyio
from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from pydantic import BaseModel

from tether import node_context
from tether.cancel.context import cancelled
from tether.cancel.deadlines import coerce_timeout
from tether.config import get_stream_writer
from tether.constants import END
from tether.engine.calls import CallSpec, TaskFuture, call_spec, current_site, launch
from tether.errors import NodeTimeoutError
from tether.prebuilt.injection import InjectedState, InjectedStore, ToolRuntime
from tether.prebuilt.tool_call import BUBBLE_UP, ToolCaller, runs_sync
from tether.prebuilt.tool_errors import (
    ErrorHandling,
    ErrorPolicy,
    ToolInvocationError,
    default_handle_tool_errors,
)
from tether.prebuilt.tool_results import CallOutput, InputKind, ToolAnswers, msg_content_output
from tether.runtime import charge
from tether.types import CancelReason

_CALL_FAILED = "another tool call of the node failed"
"""Why the running calls of a node are cancelled when one of its calls fails (a reason made at
the failure: its `requested_at` is when the calls were stopped)."""


class ToolCallWithContext(TypedDict):
    """One tool call sent to a `ToolNode` with the state it was made in (`Send` payload)."""

    __type: Literal["tool_call_with_context"]
    tool_call: ToolCall
    state: Any


@dataclasses.dataclass
class ToolCallRequest:
    """One call as a `wrap_tool_call` interceptor sees it.

    Attributes:
        tool_call: the call (name, args, id).
        tool: the tool it names, or None when the node has no such tool.
        state: the graph state the node was given.
        runtime: what the tool may reach.
    """

    tool_call: ToolCall
    tool: BaseTool | None
    state: Any
    runtime: ToolRuntime[Any, Any]

    def override(self, **changes: Any) -> ToolCallRequest:
        """A copy with some fields replaced (a new `state` reaches the runtime too)."""
        request = dataclasses.replace(self, **changes)
        if "state" in changes and isinstance(request.runtime, ToolRuntime):
            request = dataclasses.replace(
                request, runtime=dataclasses.replace(request.runtime, state=request.state))
        return request


Execute = Callable[[ToolCallRequest], Any]
ToolCallWrapper = Callable[[ToolCallRequest, Execute], Any]
AsyncToolCallWrapper = Callable[[ToolCallRequest, Callable[[ToolCallRequest], Awaitable[Any]]],
                                Awaitable[Any]]


class ToolNode(Runnable[Any, Any]):
    """Runs every tool call of the last `AIMessage` and answers each with a `ToolMessage`.

    Input: a state with a messages key, a list of messages, a list of tool calls, or one call
    sent with its state. Output: `{messages_key: [ToolMessage, ...]}` (a list for list input),
    or a list of `Command`s and updates when a tool answers with a `Command`.

    Args:
        tools: tools, or plain functions (made into tools).
        name: the node's name in a graph.
        tags: tags for the node's runs.
        handle_tool_errors: which tool failures become an error `ToolMessage` the model can
            read (see `ErrorHandling`); by default only bad arguments from the model.
        messages_key: the state key holding the messages.
        wrap_tool_call: `wrapper(request, execute)` around each call (sync).
        awrap_tool_call: the same, async.
        timeout: seconds each call may take (None: no limit but its node's). A call that
            runs longer is stopped (its `tether.on_cancel` hooks run) and answered with an
            error `ToolMessage` ("Error: tool 'x' timed out after Ns"), so the model can go
            on; with `handle_tool_errors=False` the node fails with `NodeTimeoutError`.

    Inside a graph run each call is a unit of the run of its own (as a `@task` is): it is
    cancelled with its node and inherits its deadline and budget; when the run is stopped,
    the answers of the calls that finished are kept in its final checkpoint, and
    `graph.resume(run_id)` runs only the calls that did not finish. A call of a plain sync
    tool (no coroutine, no async method of its own; and no interceptor set) runs on one of
    tether's threads, as a sync node does: `tether.cancelled()` turns true there on a stop or
    at its timeout, and a thread that does not return within the node's grace is abandoned
    (its answer thrown away). An async tool runs on the event loop.
    """

    def __init__(self, tools: Sequence[BaseTool | Callable[..., Any]], *, name: str = "tools",
                 tags: list[str] | None = None,
                 handle_tool_errors: ErrorHandling = default_handle_tool_errors,
                 messages_key: str = "messages",
                 wrap_tool_call: ToolCallWrapper | None = None,
                 awrap_tool_call: AsyncToolCallWrapper | None = None,
                 timeout: float | None = None) -> None:
        self.name = name
        self.timeout = coerce_timeout(timeout, f"timeout of ToolNode '{name}'")
        # One name for both kinds of unit: a call's id does not depend on where it runs.
        self._unit: CallSpec = call_spec(f"{name}:call", self._run_one, is_async=True,
                                         timeout=self.timeout, quiet=True)
        self._sync_unit: CallSpec = call_spec(f"{name}:call", self._run_one_sync,
                                              is_async=False, timeout=self.timeout, quiet=True)
        self.tags = tags
        self._handle_tool_errors = handle_tool_errors
        self._messages_key = messages_key
        self._answers = ToolAnswers(messages_key)
        self._wrap_tool_call = wrap_tool_call
        self._awrap_tool_call = awrap_tool_call
        self._tools_by_name: dict[str, BaseTool] = {}
        for item in tools:
            made = item if isinstance(item, BaseTool) else as_tool(item)
            self._tools_by_name[made.name] = made
        self._caller = ToolCaller(self._tools_by_name, ErrorPolicy(handle_tool_errors),
                                  self._answers)
        # The tools whose calls run as sync units (decided on the tools as given): an
        # interceptor sees every call from the loop, so with one set none do.
        self._sync_tools = frozenset(
            name for name, made in self._tools_by_name.items()
            if wrap_tool_call is None and awrap_tool_call is None and runs_sync(made))

    @property
    def tools_by_name(self) -> dict[str, BaseTool]:
        """The node's tools by name."""
        return self._tools_by_name

    # -- running --------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Run the calls from sync code (outside a graph, or in a sync node). See `ainvoke`."""
        from tether.runs.portal import run_sync

        return run_sync(lambda _private: self.ainvoke(input, config, **kwargs))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        """Run every tool call of the input concurrently; their answers in call order.

        Raises:
            ValueError: the input holds no messages, or no `AIMessage`.
            Exception: a tool's failure that `handle_tool_errors` does not handle (the other
                calls are cancelled first).

        Cancellation:
            Cancelling the node cancels every call still running (async tools at their next
            await; sync tools see `tether.cancelled()`); nothing is returned.
        """
        del kwargs
        calls, kind = self._parse_input(input)
        state = _state_of(input)
        base = _tool_config(config)
        runtimes = [self._runtime(call, state, base) for call in calls]
        if _units_here():
            outputs = await self._as_units(calls, kind, runtimes)
        elif len(calls) == 1:
            outputs = [await self._run_one(calls[0], kind, runtimes[0])]
        else:
            outputs = await _gather([
                functools.partial(self._run_one, call, kind, runtime)
                for call, runtime in zip(calls, runtimes, strict=True)
            ])
        return self._answers.combine(outputs, kind)

    async def _as_units(self, calls: list[ToolCall], kind: InputKind,
                        runtimes: list[ToolRuntime[Any, Any]]) -> list[CallOutput]:
        """Each call launched as a unit of the run (in call order, so that a resumed node
        finds the answers its stopped attempt kept: a call's id is its place in that order,
        whichever kind of unit it is); their answers in call order."""
        sync_tools, unit, sync_unit = self._sync_tools, self._unit, self._sync_unit
        futures = [launch(sync_unit if call["name"] in sync_tools else unit,
                          (call, kind, runtime), {})
                   for call, runtime in zip(calls, runtimes, strict=True)]

        async def answer(index: int) -> CallOutput:
            try:
                return cast("CallOutput", await _answer_of(futures[index]))
            except NodeTimeoutError as error:
                if self._handle_tool_errors is False:
                    raise
                call = calls[index]
                return ToolMessage(
                    content=f"Error: tool '{call['name']}' timed out after {error.timeout:g}s",
                    name=call["name"], tool_call_id=call["id"], status="error")

        if len(calls) == 1:
            return [await answer(0)]
        try:
            return await _gather([functools.partial(answer, i) for i in range(len(calls))])
        except Exception:
            # A call failed (or paused): the node gives up on the others; their threads see
            # the cancel rather than run on until the grace.
            current_site().cancel_calls(CancelReason("parent", _CALL_FAILED, "engine"))
            raise

    def _runtime(self, call: ToolCall, state: Any, config: dict[str, Any]
                 ) -> ToolRuntime[Any, Any]:
        ctx = node_context.current()
        graph_runtime = ctx.runtime if ctx is not None else None
        return ToolRuntime(
            state=state, context=getattr(graph_runtime, "context", None),
            config=dict(config), stream_writer=get_stream_writer(), tool_call_id=call["id"],
            store=getattr(graph_runtime, "store", None), tools=list(self._tools_by_name.values()),
        )

    async def _run_one(self, call: ToolCall, kind: InputKind,
                       runtime: ToolRuntime[Any, Any]) -> CallOutput:
        charge(tool_calls=1)  # every call counts toward the run's tool-call budget and rate
        tool = self._tools_by_name.get(call["name"])
        if self._awrap_tool_call is None and self._wrap_tool_call is None:
            return await self._caller.acall(call, tool, runtime, kind)
        request = ToolCallRequest(call, tool, runtime.state, runtime)
        try:
            if self._awrap_tool_call is not None:
                answer = await self._awrap_tool_call(
                    request, lambda req: self._execute(req, kind))
            else:
                answer = await _wrapped_in_thread(
                    cast("ToolCallWrapper", self._wrap_tool_call), request,
                    lambda req: self._execute(req, kind))
            return cast("CallOutput", answer)
        except BUBBLE_UP:
            raise
        except Exception as error:
            if not self._handle_tool_errors:
                raise
            return self._caller.error_message(call, error)

    def _run_one_sync(self, call: ToolCall, kind: InputKind,
                      runtime: ToolRuntime[Any, Any]) -> CallOutput:
        """A call of a plain sync tool, on the thread its unit runs on (no interceptor)."""
        charge(tool_calls=1)
        return self._caller.call(call, self._tools_by_name[call["name"]], runtime, kind)

    async def _execute(self, request: ToolCallRequest, kind: InputKind) -> CallOutput:
        return await self._caller.acall(request.tool_call, request.tool, request.runtime, kind)

    # -- input ----------------------------------------------------------------------------

    def _parse_input(self, value: Any) -> tuple[list[ToolCall], InputKind]:
        if isinstance(value, list):
            if value and isinstance(value[-1], dict) and value[-1].get("type") == "tool_call":
                return cast("list[ToolCall]", value), "tool_calls"
            messages: Any = value
            kind: InputKind = "list"
        elif isinstance(value, dict) and value.get("__type") == "tool_call_with_context":
            return [value["tool_call"]], "tool_calls"
        else:
            messages = (value.get(self._messages_key) if isinstance(value, dict)
                        else getattr(value, self._messages_key, None))
            if not messages:
                raise ValueError("No message found in input")
            kind = "dict"
        for message in reversed(messages):
            if isinstance(message, AIMessage):
                return list(message.tool_calls), kind
        raise ValueError("No AIMessage found in input")


def _units_here() -> bool:
    """Whether the calls can be units of the running node: an async attempt, on its loop (a
    sync node calling `invoke` runs them on a loop of its own, directly)."""
    ctx = node_context.current()
    if ctx is None or ctx.calls is None:
        return False
    site = current_site()
    try:
        return not site.sync and site.loop is asyncio.get_running_loop()
    except RuntimeError:
        return False


async def _answer_of(future: TaskFuture) -> Any:
    """A call's answer, awaited without handing a stop of the run on to the call as a second,
    native cancel: the stop reaches the call through its own scope, whose ladder waits for a
    sync tool's thread (up to the grace) instead of leaving it running unseen; the node's
    attempt then settles its calls. Any other cancel of the waiter (a sibling call failed)
    cancels the call at once, as awaiting it directly would.

    Cancellation:
        Raises `CancelledError` at once; the call goes on until its own scope stops it.
    """
    if future.done():
        return future.result()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not cancelled():
            future.cancel()
        raise


def _state_of(value: Any) -> Any:
    if isinstance(value, dict) and value.get("__type") == "tool_call_with_context":
        return value["state"]
    if isinstance(value, list) and value and isinstance(value[-1], dict) \
            and value[-1].get("type") == "tool_call":
        return {}
    return value


def _tool_config(config: RunnableConfig | None) -> dict[str, Any]:
    # A tool call is a run of its own: it must not reuse the graph run's id.
    return {k: v for k, v in (config or {}).items() if k != "run_id"}


async def _gather(jobs: list[Callable[[], Awaitable[CallOutput]]]) -> list[CallOutput]:
    """Run jobs concurrently; their results in order. On a failure the others are cancelled
    and the failure of the earliest job (in job order) is raised."""
    results: list[Any] = [None] * len(jobs)

    async def run(index: int) -> None:
        results[index] = await jobs[index]()

    try:
        async with anyio.create_task_group() as group:
            for index in range(len(jobs)):
                group.start_soon(run, index)
    except BaseExceptionGroup as failures:
        raise _first(failures) from None
    return results


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error


async def _wrapped_in_thread(wrapper: ToolCallWrapper, request: ToolCallRequest,
                             execute: Callable[[ToolCallRequest], Coroutine[Any, Any, CallOutput]]
                             ) -> Any:
    """A sync `wrap_tool_call` in the async node: the wrapper runs in a thread and each
    `execute(...)` it makes comes back to the event loop."""
    def execute_from_thread(req: ToolCallRequest) -> CallOutput:
        return anyio.from_thread.run(execute, req)

    return await anyio.to_thread.run_sync(wrapper, request, execute_from_thread)


def tools_condition(state: list[Any] | dict[str, Any] | BaseModel,
                    messages_key: str = "messages") -> Literal["tools", "__end__"]:
    """Route to `"tools"` when the last message has tool calls, else to the end.

    Raises:
        ValueError: the state holds no messages.
    """
    if isinstance(state, list):
        last = state[-1]
    elif (isinstance(state, dict) and (messages := state.get(messages_key, []))) or (
            messages := getattr(state, messages_key, [])):
        last = messages[-1]
    else:
        raise ValueError(f"No messages found in input state to tool_edge: {state}")
    if getattr(last, "tool_calls", None):
        return "tools"
    return END


__all__ = [
    "InjectedState",
    "InjectedStore",
    "ToolCallRequest",
    "ToolCallWithContext",
    "ToolInvocationError",
    "ToolNode",
    "ToolRuntime",
    "msg_content_output",
    "tools_condition",
]
