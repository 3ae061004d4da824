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
from collections.abc import Callable, Iterable
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
            return frame(ormsgpack.packb(value, default=self._encode, option=_PACK_OPTS))
        except SerializationError as exc:
            raise SerializationError(f"cannot store state key {key!r}: {exc}") from None
        except (TypeError, ValueError, ormsgpack.MsgpackEncodeError) as exc:
            raise SerializationError(f"cannot store state key {key!r}: {exc}") from None

    def _pack(self, value: Any) -> bytes:
        return ormsgpack.packb(value, default=self._encode, option=_PACK_OPTS)

    def _encode(self, obj: Any) -> ormsgpack.Ext:  # noqa: PLR0911, PLR0912 - one case per type
        if isinstance(obj, tuple) and type(obj) is tuple:
            return ormsgpack.Ext(EXT_TUPLE, self._pack(list(obj)))
        if isinstance(obj, frozenset):
            return ormsgpack.Ext(EXT_FROZENSET, self._pack(list(obj)))
        if isinstance(obj, set):
            return ormsgpack.Ext(EXT_SET, self._pack(list(obj)))
        if isinstance(obj, Send):
            return ormsgpack.Ext(EXT_SEND, self._pack([obj.node, obj.arg]))
        if isinstance(obj, enum.Enum):
            return ormsgpack.Ext(EXT_ENUM, self._pack([_type_path(type(obj)), obj.value]))
        if isinstance(obj, dt.datetime):
            return ormsgpack.Ext(EXT_DATETIME, obj.isoformat().encode())
        if isinstance(obj, dt.date):
            return ormsgpack.Ext(EXT_DATE, obj.isoformat().encode())
        if isinstance(obj, dt.time):
            return ormsgpack.Ext(EXT_TIME, obj.isoformat().encode())
        if isinstance(obj, dt.timedelta):
            parts = [obj.days, obj.seconds, obj.microseconds]
            return ormsgpack.Ext(EXT_TIMEDELTA, self._pack(parts))
        if isinstance(obj, uuid.UUID):
            return ormsgpack.Ext(EXT_UUID, obj.bytes)
        if isinstance(obj, decimal.Decimal):
            return ormsgpack.Ext(EXT_DECIMAL, str(obj).encode())
        if isinstance(obj, bool):
            raise SerializationError("unexpected bool subclass")
        if isinstance(obj, int):
            if type(obj) is int:
                return ormsgpack.Ext(EXT_BIGINT, str(obj).encode())
            return ormsgpack.Ext(EXT_SUBCLASS, self._pack([_type_path(type(obj)), int(obj)]))
        if isinstance(obj, complex):
            return ormsgpack.Ext(EXT_COMPLEX, self._pack([obj.real, obj.imag]))
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
            return ormsgpack.Ext(EXT_DATACLASS, self._pack([_type_path(type(obj)), fields]))
        if _is_pydantic(obj):
            data = obj.model_dump(mode="python", round_trip=True)
            return ormsgpack.Ext(EXT_PYDANTIC, self._pack([_type_path(type(obj)), data]))
        if isinstance(obj, (str, float, list, dict, tuple)):
            # A subclass of a builtin container: store it as its base type.
            base: Any = next(b for b in (str, float, list, dict, tuple) if isinstance(obj, b))
            return ormsgpack.Ext(EXT_SUBCLASS, self._pack([_type_path(type(obj)), base(obj)]))
        raise SerializationError(
            f"values of type {type(obj).__module__}.{type(obj).__qualname__} cannot be stored "
            "(use primitives, containers, dataclasses, pydantic models or enums)"
        )

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


def _type_path(cls: type) -> str:
    return registry.stored(cls)


def _is_pydantic(obj: Any) -> bool:
    return hasattr(obj, "model_dump") and hasattr(type(obj), "model_validate")


def _is_pydantic_class(cls: Any) -> bool:
    return isinstance(cls, type) and hasattr(cls, "model_validate") and hasattr(cls, "model_fields")


__all__ = ["FRAME", "Serializer", "UnresolvedValue", "frame", "place"]
