"""Every type the serializer supports comes back equal, and of the same type, from every store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import random
import sys
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import ormsgpack
import pydantic
import pytest

from tether.checkpoint.base import CheckpointStore
from tether.checkpoint.serde import FRAME, Serializer, UnresolvedValue, frame
from tether.errors import CorruptStoreError, SerializationError

from .conftest import Backend, Chain, write


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(enum.StrEnum):
    CALM = "calm"


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str
    corners: list[Point]
    color: Color


class User(pydantic.BaseModel):
    name: str
    born: dt.date
    roles: set[str] = set()


class Team(pydantic.BaseModel):
    lead: User
    members: list[User]


class Pair(NamedTuple):
    left: int
    right: str


VALUES: dict[str, Any] = {
    "none": None,
    "bools": [True, False],
    "int": -42,
    "float": 3.25,
    "str": "héllo ✓",
    "empty": ["", [], {}],
    "bytes": b"\x00\xffbinary",
    "list": [1, "two", [3.0, None]],
    "dict": {"a": {"b": [1, 2]}, "c": None},
    "dict_int_keys": {1: "one", 2: "two"},
    "tuple": (1, "a", (2, (3,))),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "datetime_aware": dt.datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    "datetime_offset": dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    "datetime_naive": dt.datetime(2030, 1, 2, 3, 4, 5),
    "date": dt.date(1999, 12, 31),
    "time": dt.time(23, 59, 58, 1234),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": decimal.Decimal("3.14159265358979323846264338327950288"),
    "enum": Color.RED,
    "enum_int_value": Color.BLUE,
    "int_enum": Level.HIGH,
    "str_enum": Mood.CALM,
    "dataclass": Point(1, 2.5, ("a",)),
    "nested_dataclass": Shape("tri", [Point(0, 0.0), Point(1, 1.0)], Color.BLUE),
    "pydantic": User(name="ada", born=dt.date(1815, 12, 10), roles={"admin"}),
    "nested_pydantic": Team(lead=User(name="a", born=dt.date(2000, 1, 1)),
                            members=[User(name="b", born=dt.date(2001, 1, 1))]),
    "namedtuple": Pair(1, "x"),
    "big_int": 2**100,
    "big_negative_int": -(2**70),
    "complex": complex(1.5, -2),
    "mixed": {"when": dt.date(2020, 1, 1), "ids": [uuid.UUID(int=1)], "p": Point(3, 4.0)},
}


def same(left: Any, right: Any) -> bool:
    """Equal and of the same types, all the way down."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(v, right[k]) for k, v in left.items())
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right,
                                                                           strict=True))
    return bool(left == right)


@pytest.mark.parametrize("key", sorted(VALUES))
def test_a_value_round_trips_through_a_checkpoint(store: CheckpointStore, key: str) -> None:
    value = VALUES[key]
    chain = Chain(store)
    chain.put({key: value})
    stored = store.get_checkpoint("t")
    assert stored is not None
    assert same(stored.values[key], value), (stored.values[key], value)


@pytest.mark.parametrize("key", sorted(VALUES))
def test_a_value_round_trips_through_a_pending_write(store: CheckpointStore, key: str) -> None:
    value = VALUES[key]
    chain = Chain(store)
    chain.put({"x": 0})
    store.put_writes("t", "", chain.head, [write("task", key, value)])
    stored = store.get_checkpoint("t")
    assert stored is not None
    assert same(stored.pending_writes[0].value, value)


def test_every_supported_value_round_trips_in_one_checkpoint_with_its_metadata(
        store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put(dict(VALUES), metadata={"writes": {"node": VALUES["mixed"]}, "step": 0})
    stored = store.get_checkpoint("t")
    assert stored is not None
    assert same(stored.values, dict(VALUES))
    assert same(stored.metadata, {"writes": {"node": VALUES["mixed"]}, "step": 0})


def test_a_bytearray_comes_back_as_immutable_bytes(store: CheckpointStore) -> None:
    # Documented in serde.py: a stored buffer is a snapshot, so it comes back as bytes.
    Chain(store).put({"buffer": bytearray(b"mutable")})
    stored = store.get_checkpoint("t")
    assert stored is not None
    assert type(stored.values["buffer"]) is bytes
    assert stored.values["buffer"] == b"mutable"


class Opaque:
    """A plain class: the serializer refuses it rather than pickle it."""


@pytest.mark.parametrize("bad", [Opaque(), lambda: 1, {"deep": [Opaque()]}, object()],
                         ids=["instance", "function", "nested", "object"])
def test_a_value_that_cannot_be_stored_raises_naming_its_key_and_stores_nothing(
        store: CheckpointStore, bad: Any) -> None:
    chain = Chain(store)
    chain.put({"fine": 1})
    good = chain.head
    record = chain.record({"ok": 2, "the_bad_key": bad})
    with pytest.raises(SerializationError, match="the_bad_key"):
        store.put_checkpoint(record)
    latest = store.get_checkpoint("t")
    assert latest is not None and latest.id == good
    assert [c.id for c in store.list_checkpoints("t")] == [good]


def test_a_pending_write_that_cannot_be_stored_raises_naming_its_channel_and_stores_nothing(
        store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"fine": 1})
    with pytest.raises(SerializationError, match="bad_channel"):
        store.put_writes("t", "", chain.head, [write("t1", "good", 1),
                                               write("t1", "bad_channel", Opaque(), idx=1)])
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.pending_writes == ()


def test_a_stored_value_is_a_copy_that_later_mutation_cannot_change(
        store: CheckpointStore) -> None:
    items = [1, 2]
    chain = Chain(store)
    chain.put({"items": items})
    items.append(3)
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.values["items"] == [1, 2]


# -- what a database may make the serializer do ------------------------------------------------


def _stored_class(code: int, path: str, payload: Any) -> bytes:
    """A value naming class `path`, framed with a valid checksum (as anyone who can write to
    the database could make it)."""
    return frame(ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb([path, payload]))))


CANARY = '''
import pathlib
pathlib.Path(__file__).with_name("imported").touch()


class Thing:
    def __init__(self, **fields):
        pathlib.Path(__file__).with_name("constructed").touch()
'''


@pytest.mark.sql_only
@pytest.mark.parametrize(("code", "path"), [
    (21, "tether_canary:Thing"), (22, "tether_canary:Thing"), (23, "tether_canary:Thing"),
    (21, "os:system"), (23, "posix:system"), (21, "builtins:eval"), (21, "os:path.os.system"),
    (23, "collections:OrderedDict"), (20, "subprocess:Popen"),
])
def test_a_stored_class_never_allowed_is_neither_imported_nor_built(
        *, backend: Backend, store: CheckpointStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, code: int, path: str) -> None:
    # A module whose name starts like tether's, on the path but never imported.
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "tether_canary.py").write_text(CANARY)
    monkeypatch.syspath_prepend(str(canary))
    Chain(store).put({"x": 1})
    assert backend.raw_sql is not None
    backend.raw_sql(store, "UPDATE blobs SET value = ? WHERE channel = ?",
                    (_stored_class(code, path, {"a": 1}), "x"))
    stored = store.get_checkpoint("t")
    assert stored is not None
    value = stored.values["x"]
    assert isinstance(value, UnresolvedValue) and value.type_path == path
    assert value.data == {"a": 1}
    assert "tether_canary" not in sys.modules
    assert not (canary / "imported").exists() and not (canary / "constructed").exists()


@pytest.mark.sql_only
@pytest.mark.parametrize("damage", ["random bytes", "truncated", "one bit flipped", "unframed",
                                    "empty"])
@pytest.mark.parametrize("where", ["value", "pending write"])
def test_a_damaged_value_raises_corrupt_store_error_naming_thread_checkpoint_and_channel(
        backend: Backend, store: CheckpointStore, damage: str, where: str) -> None:
    chain = Chain(store)
    chain.put({"x": {"a": [1, 2, 3]}, "y": 2})
    store.put_writes("t", "", chain.head, [write("task", "x", {"a": [1, 2, 3]})])
    good = Serializer().dumps({"a": [1, 2, 3]})
    bad = {"random bytes": bytes(random.Random(1).randrange(256) for _ in range(64)),
           "truncated": good[:-3], "one bit flipped": good[:-1] + bytes([good[-1] ^ 1]),
           "unframed": good[len(FRAME) + 4:], "empty": b""}[damage]
    table = "blobs" if where == "value" else "writes"
    assert backend.raw_sql is not None
    backend.raw_sql(store, f"UPDATE {table} SET value = ? WHERE channel = ?", (bad, "x"))
    with pytest.raises(CorruptStoreError) as caught:
        store.get_checkpoint("t")
    message = str(caught.value)
    assert "'x'" in message and repr(chain.head) in message and "'t'" in message


@pytest.mark.sql_only
@pytest.mark.durable_only
def test_values_stored_before_checksums_read_back_after_the_migration(
        backend: Backend, store: CheckpointStore, tmp_path: Path) -> None:
    chain = Chain(store)
    chain.put({"x": VALUES["nested_dataclass"], "y": VALUES["mixed"]},
              nxt=("node",), metadata={"step": 0, "when": VALUES["date"]})
    store.put_writes("t", "", chain.head, [write("task", "x", VALUES["pydantic"])])
    # Back to the format of the schema before checksums: no frames, and that version.
    assert backend.raw_sql is not None
    unframed = len(FRAME) + 5  # SQL counts from 1
    for table, column in (("blobs", "value"), ("writes", "value"),
                          ("checkpoints", "next"), ("checkpoints", "metadata")):
        backend.raw_sql(store, f"UPDATE {table} SET {column} = substr({column}, {unframed})",
                        ())
    if backend.name == "sqlite":
        from tether.checkpoint.sqlite import _sql as sqlite_sql

        version = _checksum_version(sqlite_sql.MIGRATIONS)
        backend.raw_sql(store, f"PRAGMA user_version = {version - 1}", ())
    else:
        from tether.checkpoint.postgres import _migrations as postgres_sql

        version = _checksum_version(postgres_sql.MIGRATIONS)
        backend.raw_sql(store, f"DELETE FROM tether_schema WHERE version >= {version}", ())
    assert backend.reopen is not None
    reopened = backend.reopen(store, tmp_path)
    try:
        stored = reopened.get_checkpoint("t")
        assert stored is not None
        assert same(stored.values, {"x": VALUES["nested_dataclass"], "y": VALUES["mixed"]})
        assert stored.next == ("node",)
        assert same(stored.metadata, {"step": 0, "when": VALUES["date"]})
        assert same(stored.pending_writes[0].value, VALUES["pydantic"])
    finally:
        close = getattr(reopened, "close", None)
        if close is not None:
            close()


def _checksum_version(migrations: Any) -> int:
    """The schema version that put checksums on stored values. Going back to the one before
    reapplies it and the versions after it, which are written to be applied again (Postgres's
    fourth replaces a function and a trigger, its fifth makes an index if it is not there;
    SQLite's fifth drops a trigger if it is there, its sixth makes an index if it is not)."""
    version = next(n for n, (what, _) in enumerate(migrations, start=1) if "checksum" in what)
    return int(version)
