"""How state values become bytes and back: MessagePack with typed extensions, never pickle.

Round-trips primitives, bytes (a `bytearray` is stored as a snapshot and comes back as
`bytes`), tuples, sets, datetimes, UUIDs, Decimals, enums, dataclasses,
pydantic models (LangChain messages among them) and tether's own message classes. A value of
any other type fails with `SerializationError` naming the key.

Loading never runs code chosen by the database: a stored class is rebuilt only if it is one of
the exact classes allowed (`tether.checkpoint.registry`), through its ordinary constructor; any
other comes back as an `UnresolvedValue` holding its data, and no module is imported for it.

Every value is stored framed: a marker byte MessagePack never uses, a format byte, and a
CRC-32 of the payload, so damaged bytes are found (`CorruptStoreError`, naming where) instead of
loading as some other value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ormsgpack

from tether.checkpoint import registry
from tether.errors import CorruptStoreError, SerializationError
from tether.types import Send

_PACK_OPTS = (
    ormsgpack.OPT_PASSTHROUGH_TUPLE
    | ormsgpack.OPT_PASSTHROUGH_DATACLASS
    | ormsgpack.OPT_PASSTHROUGH_DATETIME
    | ormsgpack.OPT_PASSTHROUGH_UUID
    | ormsgpack.OPT_PASSTHROUGH_ENUM
    | ormsgpack.OPT_PASSTHROUGH_SUBCLASS
    | ormsgpack.OPT_PASSTHROUGH_BIG_INT
    | ormsgpack.OPT_NON_STR_KEYS
)

# Extension codes: part of the stored format, never renumber.
EXT_TUPLE, EXT_SET, EXT_FROZENSET = 1, 2, 3
EXT_DATETIME, EXT_DATE, EXT_TIME, EXT_TIMEDELTA = 4, 5, 6, 7
EXT_UUID, EXT_DECIMAL, EXT_BIGINT, EXT_COMPLEX = 8, 9, 10, 11
EXT_ENUM, EXT_DATACLASS, EXT_PYDANTIC = 20, 21, 22
EXT_SUBCLASS = 23
EXT_SEND = 24

FRAME = b"\xc1\x01"
"""The head of every stored value: 0xC1 (a byte MessagePack never uses, so no unframed value
starts with it) and the format version; a big-endian CRC-32 of the payload follows."""
_HEAD = len(FRAME) + 4
_DECODE_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError, KeyError,
                  ormsgpack.MsgpackDecodeError)


@dataclasses.dataclass(frozen=True)
class UnresolvedValue:
    """A stored object whose class is not importable here; `data` holds its fields."""

    type_path: str
    data: Any


def frame(payload: bytes) -> bytes:
    """`payload` (MessagePack) as stored: behind `FRAME` and its checksum."""
    return FRAME + zlib.crc32(payload).to_bytes(4, "big") + payload


def place(thread_id: str, checkpoint_id: str, channel: str) -> str:
    """Where a stored value is, as `CorruptStoreError` names it."""
    return f"channel {channel!r} of checkpoint {checkpoint_id!r} in thread {thread_id!r}"


class Serializer:
    """Turns values into bytes and back, safely.

    Args:
        allowed_types: classes (beyond those every serializer allows, see
            `tether.checkpoint.registry`) that stored values may be rebuilt as.
    """

    def __init__(self, allowed_types: Iterable[type] = ()) -> None:
        self.allowed_types = registry.by_path(allowed_types)

    # -- dumping --------------------------------------------------------------------------

    def dumps(self, value: Any, key: str = "value") -> bytes:
        """Encode `value` (framed, with its checksum); `key` names it in errors.

        Raises:
            SerializationError: the value (or something inside it) has no safe encoding.
        """
        try:
            return frame(_Packing().pack(value))
        except SerializationError as exc:
            raise SerializationError(f"cannot store state key {key!r}: {exc}") from None
        except (TypeError, ValueError, ormsgpack.MsgpackEncodeError) as exc:
            raise SerializationError(f"cannot store state key {key!r}: {exc}") from None

    def dumps_each(self, values: Mapping[str, Any]) -> dict[str, bytes]:
        """`dumps` of each value under its key (bytes of its own each), an object that several
        values hold encoded once: the channels of one checkpoint (its messages, and the state
        in its `Send`s).

        Raises:
            SerializationError: a value cannot be stored (the message names its key).
        """
        packing = _Packing()
        dumped: dict[str, bytes] = {}
        for key, value in values.items():
            try:
                dumped[key] = frame(packing.pack(value))
            except SerializationError as exc:
                raise SerializationError(f"cannot store state key {key!r}: {exc}") from None
            except (TypeError, ValueError, ormsgpack.MsgpackEncodeError) as exc:
                raise SerializationError(f"cannot store state key {key!r}: {exc}") from None
        return dumped

    # -- loading --------------------------------------------------------------------------

    def loads(self, data: bytes, where: str = "a stored value") -> Any:
        """Decode bytes made by `dumps`.

        Raises:
            CorruptStoreError: naming `where`, for bytes `dumps` did not make (no frame, a
                checksum that does not match) or that do not decode.
        """
        data = bytes(data)
        if len(data) < _HEAD or not data.startswith(FRAME):
            raise CorruptStoreError(f"{where} is damaged: it is not a value tether stored")
        payload = data[_HEAD:]
        if zlib.crc32(payload).to_bytes(4, "big") != data[len(FRAME):_HEAD]:
            raise CorruptStoreError(f"{where} is damaged: its checksum does not match")
        try:
            return self._unpack(payload)
        except _DECODE_ERRORS as exc:
            raise CorruptStoreError(f"{where} cannot be read back: "
                                    f"{type(exc).__name__}: {exc}") from exc

    def _unpack(self, payload: bytes) -> Any:
        return ormsgpack.unpackb(payload, ext_hook=self._decode,
                                 option=ormsgpack.OPT_NON_STR_KEYS)

    def _decode(self, code: int, data: bytes) -> Any:  # noqa: PLR0911 - one case per type
        simple: dict[int, Callable[[bytes], Any]] = {
            EXT_TUPLE: lambda d: tuple(self._unpack(d)),
            EXT_SET: lambda d: set(self._unpack(d)),
            EXT_FROZENSET: lambda d: frozenset(self._unpack(d)),
            EXT_DATETIME: lambda d: dt.datetime.fromisoformat(d.decode()),
            EXT_DATE: lambda d: dt.date.fromisoformat(d.decode()),
            EXT_TIME: lambda d: dt.time.fromisoformat(d.decode()),
            EXT_TIMEDELTA: lambda d: dt.timedelta(*self._unpack(d)),
            EXT_UUID: lambda d: uuid.UUID(bytes=d),
            EXT_DECIMAL: lambda d: decimal.Decimal(d.decode()),
            EXT_BIGINT: lambda d: int(d.decode()),
            EXT_COMPLEX: lambda d: complex(*self._unpack(d)),
        }
        if code in simple:
            return simple[code](data)
        if code == EXT_SEND:
            node, arg = self._unpack(data)
            return Send(node, arg)
        if code not in (EXT_ENUM, EXT_DATACLASS, EXT_PYDANTIC, EXT_SUBCLASS):
            raise SerializationError(f"unknown stored type code {code}")
        path, payload = self._unpack(data)
        cls: Any = registry.resolve(path, self.allowed_types)
        if cls is None:
            return UnresolvedValue(path, payload)
        if code == EXT_ENUM and isinstance(cls, type) and issubclass(cls, enum.Enum):
            return cls(payload)
        if code == EXT_DATACLASS and isinstance(cls, type) and dataclasses.is_dataclass(cls):
            return cls(**payload)
        if code == EXT_PYDANTIC and _is_pydantic_class(cls):
            return cls.model_validate(payload)
        if code == EXT_SUBCLASS and isinstance(cls, type) and issubclass(
            cls, (int, str, float, list, dict, tuple)
        ):
            if issubclass(cls, tuple) and hasattr(cls, "_fields"):
                return cls(*payload)
            return cls(payload)
        return UnresolvedValue(path, payload)


class _Packing:
    """One `dumps`: MessagePack with tether's extensions, each dataclass or pydantic object
    encoded once however often the value holds it (a step's `Send`s each hold the same state,
    its whole chat history). The objects are held until the end, so no id is reused."""

    __slots__ = ("memo",)

    def __init__(self) -> None:
        self.memo: dict[int, tuple[Any, ormsgpack.Ext]] = {}

    def pack(self, value: Any) -> bytes:
        return ormsgpack.packb(value, default=self.encode, option=_PACK_OPTS)

    def encode(self, obj: Any) -> ormsgpack.Ext:
        # Which case a value is depends on its class alone: decided once per class (a chat
        # history stores many objects of few classes, and a pydantic model answers a missing
        # attribute, as the dataclass test asks, slowly).
        cls = type(obj)
        known = _ENCODERS.get(cls)
        if known is None:
            known = _encoder_for(cls)
            if len(_ENCODERS) < _ENCODERS_KEPT:
                _ENCODERS[cls] = known
        encoder, structured = known
        if not structured:
            return encoder(self, obj)
        done = self.memo.get(id(obj))
        if done is None:
            done = self.memo[id(obj)] = (obj, encoder(self, obj))
        return done[1]


Encoder = Callable[[_Packing, Any], ormsgpack.Ext]

_ENCODERS: dict[type, tuple[Encoder, bool]] = {}
"""class → how its instances are stored, and whether they are dataclass or pydantic objects
(filled as classes are met; item assignment is atomic, so no lock is needed)."""
_ENCODERS_KEPT = 4096
"""Classes remembered at most (classes made at run time must not grow the table for ever)."""


def _encoder_for(cls: type) -> tuple[Encoder, bool]:
    """How a value of class `cls` is stored, and whether it is a dataclass or pydantic object
    (worth encoding once per `dumps`: the others are cheap, or plain data)."""
    structured = not issubclass(cls, type) and (
        dataclasses.is_dataclass(cls) or _is_pydantic_class(cls))
    return _case_for(cls), structured


def _case_for(cls: type) -> Encoder:  # noqa: PLR0911, PLR0912 - one case per type
    """How a value of class `cls` is stored (the cases in their order of precedence)."""
    if cls is tuple:
        return lambda s, obj: ormsgpack.Ext(EXT_TUPLE, s.pack(list(obj)))
    if issubclass(cls, frozenset):
        return lambda s, obj: ormsgpack.Ext(EXT_FROZENSET, s.pack(list(obj)))
    if issubclass(cls, set):
        return lambda s, obj: ormsgpack.Ext(EXT_SET, s.pack(list(obj)))
    if issubclass(cls, Send):
        return lambda s, obj: ormsgpack.Ext(EXT_SEND, s.pack([obj.node, obj.arg]))
    if issubclass(cls, enum.Enum):
        return lambda s, obj: ormsgpack.Ext(EXT_ENUM, s.pack([_type_path(cls), obj.value]))
    if issubclass(cls, dt.datetime):
        return lambda s, obj: ormsgpack.Ext(EXT_DATETIME, obj.isoformat().encode())
    if issubclass(cls, dt.date):
        return lambda s, obj: ormsgpack.Ext(EXT_DATE, obj.isoformat().encode())
    if issubclass(cls, dt.time):
        return lambda s, obj: ormsgpack.Ext(EXT_TIME, obj.isoformat().encode())
    if issubclass(cls, dt.timedelta):
        return lambda s, obj: ormsgpack.Ext(
            EXT_TIMEDELTA, s.pack([obj.days, obj.seconds, obj.microseconds]))
    if issubclass(cls, uuid.UUID):
        return lambda s, obj: ormsgpack.Ext(EXT_UUID, obj.bytes)
    if issubclass(cls, decimal.Decimal):
        return lambda s, obj: ormsgpack.Ext(EXT_DECIMAL, str(obj).encode())
    if issubclass(cls, bool):
        return _refuse("unexpected bool subclass")
    if issubclass(cls, int):
        if cls is int:
            return lambda s, obj: ormsgpack.Ext(EXT_BIGINT, str(obj).encode())
        return lambda s, obj: ormsgpack.Ext(EXT_SUBCLASS, s.pack([_type_path(cls), int(obj)]))
    if issubclass(cls, complex):
        return lambda s, obj: ormsgpack.Ext(EXT_COMPLEX, s.pack([obj.real, obj.imag]))
    if dataclasses.is_dataclass(cls) and not issubclass(cls, type):
        return _dataclass_encoder(cls)
    if hasattr(cls, "model_dump") and hasattr(cls, "model_validate"):
        path = _type_path(cls)
        return lambda s, obj: ormsgpack.Ext(EXT_PYDANTIC, s.pack(
            [path, obj.model_dump(mode="python", round_trip=True)]))
    for base in (str, float, list, dict, tuple):
        if issubclass(cls, base):
            # A subclass of a builtin container: store it as its base type.
            return _subclass_encoder(cls, base)
    return _refuse(
        f"values of type {cls.__module__}.{cls.__qualname__} cannot be stored "
        "(use primitives, containers, dataclasses, pydantic models or enums)")


def _dataclass_encoder(cls: type) -> Encoder:
    path = _type_path(cls)

    def encode(s: _Packing, obj: Any) -> ormsgpack.Ext:
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
        return ormsgpack.Ext(EXT_DATACLASS, s.pack([path, fields]))

    return encode


def _subclass_encoder(cls: type, base: Any) -> Encoder:
    return lambda s, obj: ormsgpack.Ext(EXT_SUBCLASS, s.pack([_type_path(cls), base(obj)]))


def _refuse(message: str) -> Encoder:
    def refuse(s: _Packing, obj: Any) -> ormsgpack.Ext:
        raise SerializationError(message)

    return refuse


def _type_path(cls: type) -> str:
    return registry.stored(cls)


def _is_pydantic_class(cls: Any) -> bool:
    return isinstance(cls, type) and hasattr(cls, "model_validate") and hasattr(cls, "model_fields")


__all__ = ["FRAME", "Serializer", "UnresolvedValue", "frame", "place"]
