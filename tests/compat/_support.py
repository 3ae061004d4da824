"""Shared helpers: the per-library namespace and the normalisation of random ids and times."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

LIBRARIES = ("langgraph", "tether")


@dataclass(frozen=True)
class Lib:
    """The public names a LangGraph program imports, taken from one library."""

    name: str
    StateGraph: Any
    START: str
    END: str
    MessagesState: Any
    add_messages: Callable[..., Any]
    Send: Any
    Command: Any
    interrupt: Callable[..., Any]
    RetryPolicy: Any
    InMemorySaver: Any
    get_stream_writer: Callable[..., Any]
    errors: ModuleType

    @property
    def Runtime(self) -> Any:
        """`Runtime`, imported on first use so that its absence fails only the tests using it."""
        return importlib.import_module(f"{self.name}.runtime").Runtime

    @property
    def func(self) -> ModuleType:
        """`<lib>.func` (`entrypoint`, `task`), imported on first use."""
        return importlib.import_module(f"{self.name}.func")

    @property
    def managed(self) -> ModuleType:
        """`<lib>.managed` (`RemainingSteps`, `IsLastStep`), imported on first use."""
        return importlib.import_module(f"{self.name}.managed")

    @property
    def types(self) -> ModuleType:
        """`<lib>.types`."""
        return importlib.import_module(f"{self.name}.types")

    @property
    def prebuilt(self) -> ModuleType:
        """`<library>.prebuilt`, imported on first use (it needs langchain-core)."""
        return importlib.import_module(f"{self.name}.prebuilt")

    @property
    def GraphRecursionError(self) -> type[Exception]:
        return self.errors.GraphRecursionError

    @property
    def InvalidUpdateError(self) -> type[Exception]:
        return self.errors.InvalidUpdateError

    @property
    def EmptyInputError(self) -> type[Exception]:
        return self.errors.EmptyInputError


def load(name: str) -> Lib:
    """Import the LangGraph-compatible names from `name` exactly as a user's program would."""
    graph = importlib.import_module(f"{name}.graph")
    types = importlib.import_module(f"{name}.types")
    memory = importlib.import_module(f"{name}.checkpoint.memory")
    config = importlib.import_module(f"{name}.config")
    errors = importlib.import_module(f"{name}.errors")
    return Lib(
        name=name,
        StateGraph=graph.StateGraph,
        START=graph.START,
        END=graph.END,
        MessagesState=graph.MessagesState,
        add_messages=graph.add_messages,
        Send=types.Send,
        Command=types.Command,
        interrupt=types.interrupt,
        RetryPolicy=types.RetryPolicy,
        InMemorySaver=memory.InMemorySaver,
        get_stream_writer=config.get_stream_writer,
        errors=errors,
    )


class Raised:
    """An exception as a port sees it: `got == expected` holds when `except Expected:` catches it.

    The libraries' exception classes are distinct objects, so classes are matched by name along
    the MRO: tether may raise a subclass of the class LangGraph raises (or of a builtin it raises).
    Compare with the result under test on the left: `got == expected`, `expected == "Name"`.
    """

    def __init__(self, exc: BaseException) -> None:
        self.name = type(exc).__name__
        self.names = frozenset(cls.__name__ for cls in type(exc).__mro__)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other in self.names
        if isinstance(other, Raised):
            return other.name in self.names
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Raised({self.name})"


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """Run `fn`; return ("ok", result) or ("raised", Raised(exception))."""
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - the outcome is the value under comparison
        return ("raised", Raised(exc))


async def aoutcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """Await `fn()`; return ("ok", result) or ("raised", Raised(exception))."""
    try:
        return ("ok", await fn())
    except Exception as exc:  # noqa: BLE001 - the outcome is the value under comparison
        return ("raised", Raised(exc))


_RANDOM_KEYS = frozenset({"id", "timestamp", "checkpoint_id", "run_id", "thread_ts", "task_id"})


def normalise(value: Any) -> Any:
    """Replace ids and timestamps (random in both libraries) by placeholders, recursively.

    Mappings, sequences and named tuples become plain Python data; messages become (type,
    content) and `Interrupt`s ("Interrupt", value), so results of the two libraries compare with
    `==`.
    """
    if isinstance(value, dict):
        return {
            key: ("<random>" if key in _RANDOM_KEYS and item is not None else normalise(item))
            for key, item in value.items()
        }
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {field: normalise(getattr(value, field)) for field in value._fields}
    if isinstance(value, list | tuple):
        return type(value)(normalise(item) for item in value)
    if hasattr(value, "type") and hasattr(value, "content"):
        return message(value)
    if type(value).__name__ == "Interrupt":
        return ("Interrupt", normalise(value.value))
    return value


def message(msg: Any) -> tuple[str, Any]:
    """A message reduced to what both libraries must agree on: its type and content."""
    return (msg.type, msg.content)


def snapshot(state: Any) -> dict[str, Any]:
    """A `StateSnapshot` reduced to what must match: no ids, no timestamps."""
    return {
        "values": state.values,
        "next": tuple(state.next),
        "source": state.metadata["source"] if state.metadata else None,
        "step": state.metadata["step"] if state.metadata else None,
        "tasks": [(task.name, [i.value for i in task.interrupts]) for task in state.tasks],
        "interrupts": [i.value for i in state.interrupts],
    }


def history(states: Any) -> list[dict[str, Any]]:
    """`get_state_history` as snapshots, with each parent given by its index in the list.

    Checkpoint ids are opaque, so the chain is compared by shape: `parent` is the position of the
    parent checkpoint in the same list (None for the first checkpoint of a thread).
    """
    states = list(states)
    position = {s.config["configurable"]["checkpoint_id"]: i for i, s in enumerate(states)}
    return [
        {
            **snapshot(state),
            "parent": (
                position.get(state.parent_config["configurable"]["checkpoint_id"], "missing")
                if state.parent_config
                else None
            ),
        }
        for state in states
    ]


def thread(thread_id: str, **configurable: Any) -> dict[str, Any]:
    """A run config for `thread_id`."""
    return {"configurable": {"thread_id": thread_id, **configurable}}
