"""Stream `version="v2"`: every chunk a `{"type", "ns", "data"}` part, as LangGraph 1.x streams
them; `values` parts carry their interrupts apart and, for a dataclass or pydantic state, the
state object itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.constants import INTERRUPT, START
from tether.runs.request import StreamFormat

Mapper = Callable[[dict[str, Any]], Any]
"""Builds the state object from a state dict (a dataclass or pydantic schema's class)."""


@dataclass(slots=True)
class PartsFormat(StreamFormat):
    """The v2 shape of chunks.

    Attributes:
        output: coerces a `values` payload (the output schema), or None to keep dicts.
        state: coerces the state in `checkpoints` and `debug` payloads, or None.
    """

    output: Mapper | None = None
    state: Mapper | None = None

    def shape(self, ns: tuple[str, ...], mode: str, payload: Any) -> Any:
        """The chunk as a v2 part."""
        if mode == "values":
            interrupts: tuple[Any, ...] = ()
            if isinstance(payload, dict):
                if INTERRUPT in payload:
                    payload = dict(payload)
                    interrupts = tuple(payload.pop(INTERRUPT))
                if self.output is not None:
                    payload = self.output(payload)
            return {"type": mode, "ns": ns, "data": payload, "interrupts": interrupts}
        if mode in ("checkpoints", "debug") and self.state is not None:
            payload = _with_state(payload, self.state)
        return {"type": mode, "ns": ns, "data": payload}


def _with_state(payload: Any, mapper: Mapper) -> Any:
    """A checkpoint payload (or a debug event holding one) with its values coerced; the first
    checkpoint of a run (whose next task is START) is left as it is, its state being partial."""
    if not isinstance(payload, dict):
        return payload
    inner = payload.get("payload") if payload.get("type") == "checkpoint" else payload
    if not isinstance(inner, dict) or not isinstance(inner.get("values"), dict):
        return payload
    if START in inner.get("next", ()):
        return payload
    coerced = {**inner, "values": mapper(inner["values"])}
    return {**payload, "payload": coerced} if inner is not payload else coerced


def coercing(schema: Any) -> Mapper | None:
    """The mapper for a state schema (`tether.graph.schema.Schema`): None unless it is a
    dataclass or a pydantic model."""
    if schema is None or schema.kind not in ("dataclass", "pydantic"):
        return None
    built: Mapper = schema.build
    return built


__all__ = ["Mapper", "PartsFormat", "coercing"]
