"""How a `ToolNode` calls a tool: through LangChain's tool machinery (argument validation,
callbacks, artifacts, the tool's own error handling), with a tether `Command` passed through.

LangChain turns whatever a tool returns into a `ToolMessage` unless it is a `ToolOutputMixin`
(LangGraph's `Command` is one). tether's `Command` cannot be one (the core does not import
LangChain), so the node calls a copy of each tool whose run methods hand a `Command` back
wrapped in a `ToolOutputMixin`, and unwraps it afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from langchain_core.messages.tool import ToolOutputMixin
from langchain_core.tools import BaseTool

from tether.types import Command


class CommandOutput(ToolOutputMixin):
    """A tool's `Command` on its way through LangChain."""

    __slots__ = ("command",)

    def __init__(self, command: Command[Any]) -> None:
        self.command = command


def _carry(output: Any) -> Any:
    if isinstance(output, Command):
        return CommandOutput(output)
    if isinstance(output, list) and output and any(isinstance(o, Command) for o in output):
        return [CommandOutput(o) if isinstance(o, Command) else o for o in output]
    return output


def unwrap(output: Any) -> Any:
    """A tool's answer with any `Command` taken out of its carrier."""
    if isinstance(output, CommandOutput):
        return output.command
    if isinstance(output, list):
        return [o.command if isinstance(o, CommandOutput) else o for o in output]
    return output


def passing_commands(tool: BaseTool) -> BaseTool:
    """A copy of `tool` whose `Command` answers survive LangChain's output formatting.

    The copy shares everything with `tool` but its two run methods; `tool` is not changed.
    """
    runner = tool.model_copy()
    run, arun = tool._run, tool._arun  # the methods LangChain's run() calls

    @functools.wraps(run)
    def run_passing(*args: Any, **kwargs: Any) -> Any:
        return _carry(run(*args, **kwargs))

    @functools.wraps(arun)
    async def arun_passing(*args: Any, **kwargs: Any) -> Any:
        return _carry(await arun(*args, **kwargs))

    _rebind(runner, "_run", run_passing)
    _rebind(runner, "_arun", arun_passing)
    return runner


def _rebind(runner: BaseTool, name: str, method: Callable[..., Any]) -> None:
    # An instance attribute shadows the class's method; the bound originals above still run
    # with the original tool as `self`, so the copy needs nothing else.
    object.__setattr__(runner, name, method)


__all__ = ["CommandOutput", "passing_commands", "unwrap"]
