"""The request bodies the server accepts, as pydantic models: the Agent Server's payloads as
`langgraph-sdk` sends them, plus tether's few extensions. Unknown fields are refused (422), so
a typo does not pass silently."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

StreamModeName = Literal["values", "updates", "custom", "debug", "tasks", "checkpoints",
                         "lifecycle"]
STREAM_MODES: tuple[str, ...] = typing.get_args(StreamModeName)
MultitaskName = Literal["reject", "enqueue", "interrupt", "rollback"]
_UNSUPPORTED_MODES = {
    "messages": "token streaming of chat models is not supported by tether yet",
    "messages-tuple": "token streaming of chat models is not supported by tether yet",
    "events": "LangChain's astream_events is not supported by tether",
    "tools": "tool events are not supported by tether",
}


class Strict(BaseModel):
    """A body whose unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class CheckpointIn(Strict):
    """A checkpoint reference (the Agent Server's `Checkpoint`)."""

    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class SendIn(Strict):
    """A `Send` in a command's `goto`."""

    node: str = Field(min_length=1)
    input: Any = None


class CommandIn(Strict):
    """A `Command` given as a run's input: resume an interrupt, update state, route."""

    resume: Any = None
    update: Any = None
    goto: str | SendIn | list[str | SendIn] | None = None


def _stream_modes(value: Any) -> Any:
    names = value if isinstance(value, list) else [value]
    for name in names:
        if isinstance(name, str) and name in _UNSUPPORTED_MODES:
            raise ValueError(f"stream_mode {name!r}: {_UNSUPPORTED_MODES[name]}; use one of "
                             f"{', '.join(STREAM_MODES)}")
    return value


class RunCreate(Strict):
    """A run to start (`POST /threads/{id}/runs[/stream|/wait]`, `POST /runs/stream|wait`)."""

    assistant_id: str = Field(min_length=1)
    input: Any = None
    command: CommandIn | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    checkpoint: CheckpointIn | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: MultitaskName | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    after_seconds: int | None = None
    webhook: str | None = None
    feedback_keys: list[str] | None = None
    langsmith_tracer: dict[str, Any] | None = None
    strict_resume: bool | None = None

    _modes = field_validator("stream_mode", mode="before")(_stream_modes)

    @field_validator("webhook")
    @classmethod
    def _no_webhook(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("webhooks are not supported by tether's server")
        return value

    @field_validator("after_seconds")
    @classmethod
    def _no_delay(cls, value: int | None) -> int | None:
        if value:
            raise ValueError("delayed runs (after_seconds) are not supported by tether's server")
        return value

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.command is not None and self.input is not None:
            raise ValueError("give either input or command, not both")
        return self

    @property
    def modes(self) -> tuple[str, ...]:
        """The requested stream modes as a tuple."""
        mode = self.stream_mode
        return tuple(mode) if isinstance(mode, list) else (mode,)


class ThreadCreate(Strict):
    """`POST /threads`."""

    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    graph_id: str | None = None


class ThreadPatch(Strict):
    """`PATCH /threads/{id}`: metadata merged into the thread's."""

    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(Strict):
    """`POST /threads/search`."""

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class StateUpdate(Strict):
    """`POST /threads/{id}/state`: write values as a node would."""

    values: Any = None
    as_node: str | None = None
    checkpoint: CheckpointIn | None = None
    checkpoint_id: str | None = None


class StateAt(Strict):
    """`POST /threads/{id}/state/checkpoint`."""

    checkpoint: CheckpointIn
    subgraphs: bool = False


class HistoryRequest(Strict):
    """`POST /threads/{id}/history`."""

    limit: int = Field(default=10, ge=1, le=1000)
    before: str | CheckpointIn | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointIn | None = None


class AssistantSearch(Strict):
    """`POST /assistants/search`."""

    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: str | None = None
    sort_order: Literal["asc", "desc"] | None = None


class RunsCancel(Strict):
    """`POST /runs/cancel`: runs of one thread by id, or every run of a status."""

    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> RunsCancel:
        if self.status is not None and (self.thread_id or self.run_ids):
            raise ValueError("give either a status, or a thread_id with run_ids")
        if self.status is None and not (self.thread_id and self.run_ids):
            raise ValueError("give a status, or a thread_id with run_ids")
        return self


class CancelRequest(Strict):
    """tether's optional body for `POST .../cancel`: why."""

    reason: str | None = Field(default=None, max_length=2000)


class ResumeRequest(Strict):
    """tether's `POST /tether/runs/{id}/resume`: continue a cancelled run."""

    config: dict[str, Any] | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"


class RunsQuery(Strict):
    """The query of tether's `GET /tether/runs`: a page of runs matching a filter."""

    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    status: str | None = None
    graph: str | None = None
    thread: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    q: str | None = Field(default=None, max_length=500)


class ForkRequest(Strict):
    """tether's `POST /tether/runs/{id}/fork`: edit a stopped run's state and continue."""

    values: dict[str, Any]
    as_node: str | None = Field(default=None, min_length=1)
    config: dict[str, Any] | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"


class StorePut(Strict):
    """`PUT /store/items`: write an item of the long-term store."""

    namespace: list[str]
    key: str = Field(min_length=1)
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = Field(default=None, gt=0)


class StoreDelete(Strict):
    """`DELETE /store/items`."""

    namespace: list[str]
    key: str = Field(min_length=1)


class StoreSearch(Strict):
    """`POST /store/items/search`."""

    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(Strict):
    """`POST /store/namespaces`."""

    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


__all__ = [
    "STREAM_MODES",
    "AssistantSearch",
    "CancelRequest",
    "CheckpointIn",
    "CommandIn",
    "ForkRequest",
    "HistoryRequest",
    "ResumeRequest",
    "RunCreate",
    "RunsCancel",
    "RunsQuery",
    "SendIn",
    "StateAt",
    "StateUpdate",
    "StoreDelete",
    "StoreNamespaces",
    "StorePut",
    "StoreSearch",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadSearch",
]
