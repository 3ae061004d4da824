"""Agents (LangGraph's `langgraph.prebuilt`): `create_react_agent`, `ToolNode`,
`tools_condition` and `ValidationNode`. Needs `langchain-core` (`pip install 'tether[agents]'`)."""

try:
    import langchain_core  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("tether.prebuilt needs langchain-core: pip install 'tether[agents]'",
                      name="langchain_core") from error

from tether.prebuilt.chat_agent_executor import create_react_agent
from tether.prebuilt.injection import InjectedState, InjectedStore, ToolRuntime
from tether.prebuilt.tool_node import ToolNode, tools_condition
from tether.prebuilt.tool_validator import ValidationNode

__all__ = [
    "InjectedState",
    "InjectedStore",
    "ToolNode",
    "ToolRuntime",
    "ValidationNode",
    "create_react_agent",
    "tools_condition",
]
