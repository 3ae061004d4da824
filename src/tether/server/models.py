"""The request bodies the server accepts, as pydantic models: the Agent Server's payloads as
`langgraph-sdk` sends them, plus tether's few extensions. Unknown fields are refused (422), so
a typo does not pass silently."""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from tether.server.payload import JsonObject, JsonValue, Text

StreamModeName = Literal["values", "updates", "custom", "debug", "tasks", "checkpoints",
                         "lifecycle", "messages", "messages-tuple"]
STREAM_MODES: tuple[str, ...] = typing.get_args(StreamModeName)
MultitaskName = Literal["reject", "enqueue", "interrupt", "rollback"]
_UNSUPPORTED_MODES = {
    "events": "LangChain's astream_events is not supported by tether",
    "tools": "tool events are not supported by tether",
}


MAX_OFFSET = 2**31 - 1
"""The largest `offset` a listing takes."""


def _not_a_bool(value: Any) -> Any:
    # JSON's `false` is not the number 0 (pydantic would take it as one).
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")  # noqa: TRY004 - pydantic's kind
    return value


Limit = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1, le=1000)]
"""How many items a listing answers: 1 to 1000."""
Offset = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=0, le=MAX_OFFSET)]
"""How many items a listing skips."""


class Strict(BaseModel):
    """A body whose unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class CheckpointIn(Strict):
    """A checkpoint reference (the Agent Server's `Checkpoint`)."""

    thread_id: Text | None = None
    checkpoint_ns: Text = ""
    checkpoint_id: Text | None = None
    checkpoint_map: JsonObject | None = None


class SendIn(Strict):
    """A `Send` in a command's `goto`."""

    node: Text = Field(min_length=1)
    input: JsonValue = None


class CommandIn(Strict):
    """A `Command` given as a run's input: resume an interrupt, update state, route."""

    resume: JsonValue = None
    update: JsonValue = None
    goto: Text | SendIn | list[Text | SendIn] | None = None


def _stream_modes(value: Any) -> Any:
    names = value if isinstance(value, list) else [value]
    for name in names:
        if isinstance(name, str) and name in _UNSUPPORTED_MODES:
            raise ValueError(f"stream_mode {name!r}: {_UNSUPPORTED_MODES[name]}; use one of "
                             f"{', '.join(STREAM_MODES)}")
    return value


class RunCreate(Strict):
    """A run to start (`POST /threads/{id}/runs[/stream|/wait]`, `POST /runs/stream|wait`)."""

    assistant_id: Text = Field(min_length=1)
    input: JsonValue = None
    command: CommandIn | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    metadata: JsonObject | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    checkpoint: CheckpointIn | None = None
    checkpoint_id: Text | None = None
    checkpoint_during: bool | None = None
    interrupt_before: Literal["*"] | list[Text] | None = None
    interrupt_after: Literal["*"] | list[Text] | None = None
    multitask_strategy: MultitaskName | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    after_seconds: int | None = None
    webhook: str | None = None
    feedback_keys: list[Text] | None = None
    langsmith_tracer: JsonObject | None = None
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

    thread_id: Text | None = Field(default=None, min_length=1, max_length=200,
                                   pattern="^[^/]+$")
    metadata: JsonObject | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    graph_id: Text | None = None


class ThreadPatch(Strict):
    """`PATCH /threads/{id}`: metadata merged into the thread's."""

    metadata: JsonObject = Field(default_factory=dict)


ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
ThreadField = Literal["thread_id", "created_at", "updated_at", "state_updated_at", "metadata",
                      "config", "status", "values", "interrupts"]


class ThreadCount(Strict):
    """`POST /threads/count`."""

    metadata: JsonObject | None = None
    values: JsonObject | None = None
    status: ThreadStatus | None = None


class ThreadPrune(Strict):
    """`POST /threads/prune`."""

    thread_ids: list[Text]
    strategy: Literal["delete", "keep_latest"] = "delete"


class ThreadSearch(ThreadCount):
    """`POST /threads/search`."""

    ids: list[Text] | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Literal["thread_id", "created_at", "updated_at", "state_updated_at",
                     "status"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[ThreadField] | None = None


class StateUpdate(Strict):
    """`POST /threads/{id}/state`: write values as a node would."""

    values: JsonValue = None
    as_node: Text | None = None
    checkpoint: CheckpointIn | None = None
    checkpoint_id: Text | None = None


class StateAt(Strict):
    """`POST /threads/{id}/state/checkpoint`."""

    checkpoint: CheckpointIn
    subgraphs: bool = False


class HistoryRequest(Strict):
    """`POST /threads/{id}/history`."""

    limit: Limit = 10
    before: Text | CheckpointIn | None = None
    metadata: JsonObject | None = None
    checkpoint: CheckpointIn | None = None


class AssistantSearch(Strict):
    """`POST /assistants/search`."""

    metadata: JsonObject | None = None
    graph_id: Text | None = None
    name: Text | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Text | None = None
    sort_order: Literal["asc", "desc"] | None = None


class AssistantCount(Strict):
    """`POST /assistants/count`: the filters of `AssistantSearch`."""

    metadata: JsonObject | None = None
    graph_id: Text | None = None
    name: Text | None = None


class AssistantVersions(Strict):
    """`POST /assistants/{id}/versions`."""

    metadata: JsonObject | None = None
    limit: Limit = 10
    offset: Offset = 0


class AssistantLatest(Strict):
    """`POST /assistants/{id}/latest`."""

    version: int


class RunsCancel(Strict):
    """`POST /runs/cancel`: runs of one thread by id, or every run of a status."""

    thread_id: Text | None = None
    run_ids: list[Text] | None = None
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

    reason: Text | None = Field(default=None, max_length=2000)


class ResumeRequest(Strict):
    """tether's `POST /tether/runs/{id}/resume`: continue a cancelled run."""

    config: JsonObject | None = None
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

    namespace: list[Text]
    key: Text = Field(min_length=1)
    value: JsonObject
    index: Literal[False] | list[Text] | None = None
    ttl: float | None = Field(default=None, gt=0)


class StoreDelete(Strict):
    """`DELETE /store/items`."""

    namespace: list[Text]
    key: Text = Field(min_length=1)


class StoreSearch(Strict):
    """`POST /store/items/search`."""

    namespace_prefix: list[Text] = Field(default_factory=list)
    filter: JsonObject | None = None
    limit: Limit = 10
    offset: Offset = 0
    query: Text | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(Strict):
    """`POST /store/namespaces`."""

    prefix: list[Text] | None = None
    suffix: list[Text] | None = None
    max_depth: Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1, le=1000)] | None = None
    limit: Limit = 100
    offset: Offset = 0


__all__ = [
    "MAX_OFFSET",
    "STREAM_MODES",
    "AssistantCount",
    "AssistantLatest",
    "AssistantSearch",
    "AssistantVersions",
    "CancelRequest",
    "CheckpointIn",
    "CommandIn",
    "ForkRequest",
    "HistoryRequest",
    "Limit",
    "Offset",
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
    "ThreadCount",
    "ThreadPatch",
    "ThreadPrune",
    "ThreadSearch",
]
