"""Cheap construction of the frozen records every layer makes by the thousand (`RunEvent`,
`RunInfo`, `CancelReason`, `RunFinish`...), without giving up their immutability.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__` (its own
`__setattr__` refuses): a generic attribute lookup and call per field, about a microsecond for a
record of a dozen fields, paid for every event of every run (a cancel makes about ten records).
`fast_record` keeps the class as it is (its fields, defaults, `__init__`, equality, hash, repr,
`dataclasses.replace`, pickling, its type for mypy) and makes *calling the class* cheaper: the
fields are set on a bare object of a private twin class with the same slots (plain slot stores,
no `__setattr__` of its own), and the object then becomes an instance of the record
(`__class__` assignment, allowed between classes whose layouts are the same). What the caller
gets is an ordinary instance: frozen like any other.

The call goes through a metaclass made for the record, whose `__call__` takes the record's own
signature; a subclass of the record gets a metaclass of its own and is constructed the usual
way (its `__init__`, its `__post_init__`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


def fast_record(cls: type[T]) -> type[T]:
    """Return `cls` (a `@dataclass(frozen=True, slots=True)` class with no `__post_init__` and
    every field in `__init__`) rebuilt so that calling it skips the per-field
    `object.__setattr__` of its `__init__` (see the module docstring); otherwise the same class.

    Raises:
        TypeError: `cls` is not such a dataclass.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    slots = cls.__dict__.get("__slots__")
    if (not params.frozen or slots is None or tuple(slots) != tuple(f.name for f in fields)
            or hasattr(cls, "__post_init__") or any(not f.init for f in fields)):
        raise TypeError(f"fast_record needs a frozen slotted dataclass, not {cls.__name__}")
    names = tuple(f.name for f in fields)
    body = {key: value for key, value in cls.__dict__.items()
            if key not in names and key not in ("__dict__", "__weakref__")}
    meta = type(f"{cls.__name__}Type", (type(cls),), {
        "__module__": cls.__module__,
        "__doc__": f"The metaclass of `{cls.__name__}`: constructs it cheaply "
                   "(`tether.records`).",
    })
    record: type[T] = meta(cls.__name__, cls.__bases__, body)
    record.__qualname__ = cls.__qualname__
    twin = type(f"_{cls.__name__}Fields", (), {"__slots__": names, "__module__": cls.__module__})
    meta.__call__ = _constructor(record, twin, fields)  # type: ignore[method-assign]

    def subclass(mcls: type[type], name: str, bases: tuple[type, ...],
                 namespace: dict[str, Any], **kwargs: Any) -> type:
        # A subclass of the record has fields of its own: it is constructed the usual way,
        # by a metaclass of its own that calls its `__init__` again.
        if mcls is meta:
            mcls = type(f"{name}Type", (meta,), {"__call__": type.__call__,
                                                  "__module__": namespace.get("__module__")})
        return type.__new__(mcls, name, bases, namespace, **kwargs)

    meta.__new__ = staticmethod(subclass)  # type: ignore[assignment]
    return record


def _constructor(record: type[Any], twin: type[Any],
                 fields: tuple[dataclasses.Field[Any], ...]) -> Any:
    """The metaclass's `__call__`: the record's `__init__` signature, its defaults and default
    factories, then the fields stored on a twin that becomes the record."""
    namespace: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_record": record,
                                 "_MISSING": _MISSING}
    params: list[str] = []
    stores: list[str] = []
    keyword_only = False
    for f in fields:
        if f.kw_only and not keyword_only:
            params.append("*")
            keyword_only = True
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            stores.append(f"    obj.{f.name} = {f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            stores.append(f"    obj.{f.name} = _factory_{f.name}() if {f.name} is _MISSING "
                          f"else {f.name}")
        else:
            params.append(f.name)
            stores.append(f"    obj.{f.name} = {f.name}")
    source = (
        f"def __call__(cls, {', '.join(params)}):\n"
        "    obj = _new(_twin)\n"
        + "\n".join(stores) + "\n"
        "    obj.__class__ = _record\n"
        "    return obj\n"
    )
    exec(source, namespace)  # code generated from the record's own fields
    constructor = namespace["__call__"]
    constructor.__qualname__ = f"{record.__qualname__}.__init__"  # its errors read as before
    return constructor


__all__ = ["fast_record"]
