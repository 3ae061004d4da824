"""The facade: every public name is exported, and importing tether pulls in no extra."""

from __future__ import annotations

import subprocess
import sys

import tether
import tether.errors
import tether.types


def test_all_names_of_the_facade_resolve() -> None:
    missing = [name for name in tether.__all__ if not hasattr(tether, name)]
    assert missing == []
    assert tether.__all__ == sorted(tether.__all__)


def test_every_exception_is_exported_from_errors_and_facade() -> None:
    exceptions = {
        name for name, value in vars(tether.errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
        and value.__module__ == "tether.errors"
    }
    assert exceptions <= set(tether.errors.__all__)
    for name in ("RunCancelled", "RunTimeout", "NodeCancelled", "GraphRecursionError",
                 "InvalidUpdateError", "NodeTimeoutError", "EmptyInputError"):
        assert getattr(tether, name) is getattr(tether.errors, name)


def test_cancel_exceptions_are_cancelled_errors_not_exceptions() -> None:
    import asyncio

    assert issubclass(tether.RunCancelled, asyncio.CancelledError)
    assert issubclass(tether.RunTimeout, tether.RunCancelled)
    assert issubclass(tether.NodeCancelled, asyncio.CancelledError)
    assert not issubclass(tether.RunCancelled, Exception)
    assert not issubclass(tether.NodeCancelled, Exception)
    assert issubclass(tether.RecursionLimitReached, tether.GraphRecursionError)
    assert issubclass(tether.RecursionLimitReached, tether.RunCancelled)


def test_interrupts_are_not_tether_errors() -> None:
    assert not issubclass(tether.errors.GraphInterrupt, tether.TetherError)


def test_importing_tether_loads_no_optional_dependency() -> None:
    code = (
        "import sys, tether, tether.graph, tether.checkpoint.memory;"
        "bad = [m for m in ('fastapi', 'uvicorn', 'typer', 'rich', 'psycopg', 'pydantic',"
        " 'langgraph', 'langchain_core') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_langgraph_module_paths_exist() -> None:
    from tether.checkpoint.memory import InMemorySaver, MemorySaver
    from tether.config import get_config, get_stream_writer
    from tether.graph import END, START, MessagesState, StateGraph, add_messages
    from tether.types import Command, Interrupt, RetryPolicy, Send, StateSnapshot, interrupt

    assert MemorySaver is InMemorySaver
    assert (START, END) == ("__start__", "__end__")
    assert all(callable(x) for x in (StateGraph, add_messages, Command, Send, interrupt,
                                     RetryPolicy, get_config, get_stream_writer))
    assert "messages" in MessagesState.__annotations__
    assert Interrupt("v").value == "v"
    assert StateSnapshot._fields[:2] == ("values", "next")
