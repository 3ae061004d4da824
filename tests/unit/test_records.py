"""`fast_record`: calling a frozen record class sets its fields without its generated `__init__`
(no `object.__setattr__` per field), and the record is in every other way the dataclass it was:
defaults, fresh default factories, keywords, errors, immutability, equality, repr,
`dataclasses.replace`, pickling, copies, subclasses."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from tether.checkpoint.base import (
    CheckpointRecord,
    FinishResult,
    RunFinish,
    StoredCheckpoint,
    WriteRecord,
)
from tether.records import fast_record
from tether.types import CancelReason, RunEvent, RunInfo, RunSnapshot, RunStatus, Usage

AT = datetime(2026, 1, 1, tzinfo=UTC)

RECORDS = [CancelReason, RunInfo, Usage, RunSnapshot, RunEvent, RunFinish, FinishResult,
           WriteRecord, CheckpointRecord, StoredCheckpoint]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_the_run_records_are_fast_records(cls: type[Any]) -> None:
    assert type(cls).__name__ == f"{cls.__name__}Type"
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_calling_a_record_class_skips_its_generated_init(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise AssertionError("the dataclass __init__ ran")

    monkeypatch.setattr(RunEvent, "__init__", refuse)
    event = RunEvent("start", AT)
    assert (event.phase, event.at, event.node, event.detail) == ("start", AT, None, {})
    assert type(event) is RunEvent


def test_defaults_factories_and_keywords_are_the_dataclasses() -> None:
    first, second = RunEvent("start", AT), RunEvent(phase="start", at=AT)
    assert first == second and first.detail == {} and first.detail is not second.detail
    reason = CancelReason()
    assert (reason.kind, reason.message, reason.requested_by) == ("user", "", None)
    assert reason.requested_at.tzinfo is UTC and reason.evidence == {}
    assert CancelReason(evidence={"a": 1}).evidence == {"a": 1}
    info = RunInfo("r", None, RunStatus.PENDING, metadata={"k": "v"}, error_node="n")
    assert info.metadata == {"k": "v"} and info.error_node == "n" and info.reason is None
    assert RunFinish(RunStatus.CANCELLED).events == ()


def test_a_missing_or_unknown_argument_fails_as_the_dataclasses_init_did() -> None:
    with pytest.raises(TypeError, match=r"RunEvent\.__init__\(\) missing 1 required"):
        RunEvent("start")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        RunEvent("start", AT, nope=1)  # type: ignore[call-arg]


def test_a_record_stays_immutable_and_comparable() -> None:
    event = RunEvent("start", AT, "node")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.phase = "finish"  # type: ignore[misc]
    reason = CancelReason("user", "stop", "me", AT)
    assert reason == CancelReason("user", "stop", "me", AT) != CancelReason("user", "go", "me", AT)
    assert FinishResult(RunInfo("r", None, RunStatus.PENDING, created_at=AT), True) == \
        FinishResult(RunInfo("r", None, RunStatus.PENDING, created_at=AT), True)
    assert repr(event) == f"RunEvent(phase='start', at={AT!r}, node='node', detail={{}})"


def test_replace_pickle_and_copies_give_records() -> None:
    info = RunInfo("r", "t", RunStatus.RUNNING, CancelReason("user", "stop", None, AT),
                   created_at=AT, metadata={"k": [1]})
    for other in (pickle.loads(pickle.dumps(info)), copy.copy(info), copy.deepcopy(info)):
        assert other == info and type(other) is RunInfo
    changed = dataclasses.replace(info, status=RunStatus.CANCELLING)
    assert changed.status is RunStatus.CANCELLING and changed.metadata is info.metadata
    assert type(changed) is RunInfo


def test_a_subclass_is_built_by_its_own_init() -> None:
    seen: list[str] = []

    @dataclasses.dataclass(frozen=True, slots=True)
    class Tagged(RunEvent):
        tag: str = "t"

        def __post_init__(self) -> None:
            seen.append(self.tag)

    tagged = Tagged("start", AT, tag="x")
    assert type(tagged) is Tagged and tagged.tag == "x" and seen == ["x"]
    assert Tagged("start", AT).detail == {}


def test_keyword_only_fields_stay_keyword_only() -> None:
    @fast_record
    @dataclasses.dataclass(frozen=True, slots=True)
    class Options:
        name: str
        limit: int = dataclasses.field(default=3, kw_only=True)
        tags: list[str] = dataclasses.field(default_factory=list, kw_only=True)

    assert Options("a") == Options("a", limit=3, tags=[])
    with pytest.raises(TypeError):
        Options("a", 4)  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["mutable", "no slots", "post_init"])
def test_only_frozen_slotted_records_without_post_init_are_taken(kind: str) -> None:
    def make() -> type[Any]:
        if kind == "mutable":
            @dataclasses.dataclass(slots=True)
            class Mutable:
                x: int
            return Mutable
        if kind == "no slots":
            @dataclasses.dataclass(frozen=True)
            class Plain:
                x: int
            return Plain

        @dataclasses.dataclass(frozen=True, slots=True)
        class Checked:
            x: int

            def __post_init__(self) -> None:
                pass
        return Checked

    with pytest.raises(TypeError, match="fast_record needs a frozen slotted dataclass"):
        fast_record(make())
