"""What a `ToolNode` does when a tool fails: `handle_tool_errors` in each of its forms, turned
once into a policy that says which exceptions become an error `ToolMessage`, and its text."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

from langchain_core.tools import ToolException
from pydantic import ValidationError

INVALID_TOOL_NAME_ERROR_TEMPLATE = (
    "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."
)
TOOL_CALL_ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."
TOOL_INVOCATION_ERROR_TEMPLATE = (
    "Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
    " {error}\n"
    " Please fix the error and try again."
)

ErrorHandling = bool | str | Callable[..., str] | type[Exception] | tuple[type[Exception], ...]
"""`handle_tool_errors`: True (all, default text), a text, a handler (the exceptions its first
parameter is annotated with), an exception class or tuple of them, or False (none)."""


class ToolInvocationError(ToolException):
    """The model called a tool with arguments that do not fit its schema.

    Attributes:
        message: the text the model is shown (only the arguments it controls).
        tool_name: the tool.
        tool_kwargs: the arguments the model gave.
        source: pydantic's error.
    """

    def __init__(self, tool_name: str, source: ValidationError, tool_kwargs: dict[str, Any],
                 filtered_errors: list[Any] | None = None) -> None:
        if filtered_errors is None:
            shown = str(source)
        else:
            shown = "\n".join(
                f"{'.'.join(str(part) for part in e.get('loc', ()))}: "
                f"{e.get('msg', 'Unknown error')}"
                for e in filtered_errors
            )
        self.message = TOOL_INVOCATION_ERROR_TEMPLATE.format(
            tool_name=tool_name, tool_kwargs=tool_kwargs, error=shown)
        self.tool_name = tool_name
        self.tool_kwargs = tool_kwargs
        self.source = source
        self.filtered_errors = filtered_errors
        super().__init__(self.message)


def default_handle_tool_errors(error: Exception) -> str:
    """The default: bad arguments from the model become a message it can correct; any other
    failure of the tool fails the node."""
    if isinstance(error, ToolInvocationError):
        return error.message
    raise error


class ErrorPolicy:
    """One `handle_tool_errors` setting, resolved.

    Raises:
        ValueError: (at construction) a handler annotated with a non-exception type, or a
            setting of an unknown kind.
    """

    __slots__ = ("flag", "handled")

    def __init__(self, flag: ErrorHandling) -> None:
        self.flag = flag
        self.handled: tuple[type[BaseException], ...] = ()
        if flag is False:
            return
        if isinstance(flag, type) and issubclass(flag, Exception):
            self.handled = (flag,)
        elif isinstance(flag, tuple):
            self.handled = flag
        elif callable(flag) and not isinstance(flag, type):
            self.handled = _handled_by(flag)
        elif isinstance(flag, (bool, str)):
            self.handled = (Exception,)
        else:
            raise ValueError(  # noqa: TRY004 - LangGraph's exception type
                f"Got unexpected type of `handle_tool_error`. Expected bool, str or callable. "
                f"Received: {flag}")

    def handles(self, error: BaseException) -> bool:
        """Whether `error` becomes an error `ToolMessage` instead of failing the node."""
        return bool(self.flag) and isinstance(error, self.handled)

    def content(self, error: Exception) -> str:
        """The error message's text (a handler may still re-raise)."""
        flag = self.flag
        if isinstance(flag, str):
            return flag
        if callable(flag) and not isinstance(flag, type):
            return str(flag(error))
        return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(error))


def _handled_by(handler: Callable[..., str]) -> tuple[type[BaseException], ...]:
    """The exception classes a handler's first parameter is annotated with (all, if none)."""
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        return (Exception,)
    first = params[1] if params[0].name in ("self", "cls") and len(params) == 2 else params[0]
    try:
        hints = typing.get_type_hints(handler)
    except (NameError, TypeError):
        hints = {}
    if first.name not in hints:
        return (Exception,)
    hint = hints[first.name]
    if get_origin(hint) in (Union, types.UnionType):
        members = get_args(hint)
        if all(isinstance(m, type) and issubclass(m, Exception) for m in members):
            return tuple(members)
        raise ValueError("All types in the error handler error annotation must be Exception "
                         "types. For example, `def custom_handler(e: Union[ValueError, "
                         f"TypeError])`. Got '{first.annotation}' instead.")
    if isinstance(hint, type) and issubclass(hint, Exception):
        return (hint,)
    raise ValueError("Arbitrary types are not supported in the error handler signature. "
                     "Please annotate the error with either a specific Exception type or a "
                     "union of Exception types. For example, `def custom_handler(e: "
                     f"ValueError)`. Got '{hint}' instead.")


__all__ = [
    "INVALID_TOOL_NAME_ERROR_TEMPLATE",
    "TOOL_CALL_ERROR_TEMPLATE",
    "TOOL_INVOCATION_ERROR_TEMPLATE",
    "ErrorHandling",
    "ErrorPolicy",
    "ToolInvocationError",
    "default_handle_tool_errors",
]
