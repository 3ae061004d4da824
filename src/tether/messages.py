"""Light chat message classes, used by `add_messages` when `langchain-core` is not installed.

They carry what LangGraph's reducer relies on (`type`, `content`, `id`) and round-trip through
every store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class BaseMessage:
    """A chat message."""

    content: Any = ""
    id: str | None = None
    name: str | None = None
    additional_kwargs: dict[str, Any] = field(default_factory=dict)
    response_metadata: dict[str, Any] = field(default_factory=dict)
    type: ClassVar[str] = "base"

    @property
    def text(self) -> str:
        """The content as text."""
        return self.content if isinstance(self.content, str) else str(self.content)


@dataclass
class HumanMessage(BaseMessage):
    """A message from the user."""

    type: ClassVar[str] = "human"


@dataclass
class AIMessage(BaseMessage):
    """A message from the model."""

    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    type: ClassVar[str] = "ai"


@dataclass
class SystemMessage(BaseMessage):
    """Instructions for the model."""

    type: ClassVar[str] = "system"


@dataclass
class ToolMessage(BaseMessage):
    """The result of a tool call (`status` is "error" when the call failed or was cancelled)."""

    tool_call_id: str = ""
    status: str = "success"
    type: ClassVar[str] = "tool"


@dataclass
class RemoveMessage(BaseMessage):
    """Written to a messages key, removes the message with the same id."""

    type: ClassVar[str] = "remove"


_BY_ROLE: dict[str, type[BaseMessage]] = {
    "human": HumanMessage, "user": HumanMessage,
    "ai": AIMessage, "assistant": AIMessage,
    "system": SystemMessage, "developer": SystemMessage,
    "tool": ToolMessage, "remove": RemoveMessage,
}


def to_message(value: Any) -> Any:
    """Coerce a message-like value (a message, a dict, a (role, content) tuple, a str)."""
    if isinstance(value, BaseMessage):
        return value
    if isinstance(value, str):
        return HumanMessage(content=value)
    if isinstance(value, tuple) and len(value) == 2:
        role, content = value
        return _build(str(role), {"content": content})
    if isinstance(value, dict):
        data = dict(value)
        role = data.pop("role", None) or data.pop("type", None)
        if role is None:
            raise ValueError(f"message dict needs a 'role' or 'type': {value!r}")
        return _build(str(role), data)
    if hasattr(value, "type") and hasattr(value, "content"):
        return value
    raise ValueError(f"cannot turn {type(value).__name__} into a message")


def _build(role: str, data: dict[str, Any]) -> BaseMessage:
    cls = _BY_ROLE.get(role)
    if cls is None:
        raise ValueError(f"unknown message role {role!r}")
    known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
    extra = {k: v for k, v in data.items() if k not in cls.__dataclass_fields__}
    message = cls(**known)
    message.additional_kwargs.update(extra)
    return message


__all__ = [
    "AIMessage",
    "BaseMessage",
    "HumanMessage",
    "RemoveMessage",
    "SystemMessage",
    "ToolMessage",
    "to_message",
]
