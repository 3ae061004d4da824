"""How run records, snapshots, audit logs and state values look in the terminal (rich)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from tether.lifecycle import CANCEL_PHASES
from tether.types import CancelReason, RunEvent, RunInfo, RunSnapshot, RunStatus

STATUS_STYLE = {
    RunStatus.PENDING: "dim",
    RunStatus.RUNNING: "cyan",
    RunStatus.CANCELLING: "yellow",
    RunStatus.INTERRUPTED: "magenta",
    RunStatus.SUCCESS: "green",
    RunStatus.ERROR: "red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.TIMEOUT: "yellow",
}


PIPE_WIDTH = 160
"""Width of output that goes to a pipe or a file (and `$COLUMNS` is unset)."""

UNBOUNDED_WIDTH = 100_000
"""Width of a piped listing: no row wraps, so each record is one line for `grep` and `awk`
(tables take only the width they need)."""


def make_console(*, stderr: bool = False, listing: bool = False) -> Console:
    """The console every command prints to (no highlighting of numbers; long lines are left to
    the terminal to wrap, so commands and ids stay whole). A `listing` console never wraps a
    table row when its output is piped."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    width = (UNBOUNDED_WIDTH if listing else PIPE_WIDTH) if piped else None
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def jsonable(value: Any) -> Any:
    """`value` in a form `json.dumps` accepts: messages, models and dataclasses as dicts."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return _jsonable_object(value)


def _jsonable_object(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        plain: Any = dump()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "type") and hasattr(value, "content"):
        plain = {"type": value.type, "content": value.content}
    else:
        return repr(value)
    return jsonable(plain)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """`value` as JSON text (see `jsonable`)."""
    return json.dumps(jsonable(value), indent=indent, ensure_ascii=False)


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def status_text(status: RunStatus) -> Text:
    """A run status, coloured."""
    return Text(status.value, style=STATUS_STYLE.get(status, ""))


def reason_text(reason: CancelReason | None) -> str:
    """`kind: "message" (by who)`, or an empty string."""
    if reason is None:
        return ""
    by = f" (by {reason.requested_by})" if reason.requested_by else ""
    return f'{reason.kind}: "{reason.message}"{by}'


def when(at: datetime | None) -> str:
    """A timestamp to the millisecond, in UTC."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if at is not None else "-"


def duration(info: RunInfo) -> str:
    """How long the run ran (or has been running)."""
    if info.started_at is None:
        return "-"
    end = info.ended_at or datetime.now(info.started_at.tzinfo)
    return f"{(end - info.started_at).total_seconds():.2f} s"


GRAPH_REF_KEY = "graph_ref"
"""Run (and thread) metadata key where the CLI records the `module:attr` it ran."""


def graph_name(info: RunInfo) -> str:
    """The graph a run belongs to: the `module:attr` the CLI ran, else the graph's own name."""
    return str(info.metadata.get(GRAPH_REF_KEY) or info.metadata.get("graph") or "-")


def runs_table(infos: Sequence[RunInfo]) -> Table:
    """`tether runs ls`: one row per run, newest first. Ids are never cut."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("run id", no_wrap=True, min_width=max((len(i.run_id) for i in infos),
                                                           default=6))
    table.add_column("status", no_wrap=True, min_width=11)
    for column in ("thread", "graph", "created", "took", "reason / error"):
        table.add_column(column, overflow="fold")
    for info in infos:
        table.add_row(info.run_id, status_text(info.status), info.thread_id or "-",
                      graph_name(info), when(info.created_at)[5:19],
                      duration(info),
                      "; ".join(filter(None, (reason_text(info.reason), info.error))))
    return table


def record_table(info: RunInfo) -> Table:
    """A run's record as a two-column table."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, RenderableType]] = [
        ("run", info.run_id),
        ("thread", info.thread_id or "-"),
        ("graph", graph_name(info)),
        ("status", status_text(info.status)),
        ("created", when(info.created_at)),
        ("started", when(info.started_at)),
        ("ended", when(info.ended_at)),
        ("took", duration(info)),
    ]
    if info.reason is not None:
        rows.append(("reason", reason_text(info.reason)))
    if info.cancel_latency_ms is not None:
        rows.append(("cancel latency", f"{info.cancel_latency_ms:.2f} ms"))
    if info.error:
        rows.append(("error", Text(info.error, style="red")))
    if info.error_node:
        rows.append(("failed in", Text(info.error_node, style="bold")))
    if info.error_traceback:
        rows.append(("traceback", Text(info.error_traceback, style="dim")))
    rows.append(("checkpoint", info.checkpoint_id or "-"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def snapshot_view(snapshot: RunSnapshot, width: int = 100) -> Group:
    """What `store.load(run_id)` kept: values, next, cancelled tasks, pending writes."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("step", str(snapshot.step))
    table.add_row("next", ", ".join(snapshot.next) or "(nothing: the graph is done)")
    table.add_row("cancelled tasks", ", ".join(snapshot.cancelled_tasks) or "-")
    if snapshot.pending_writes:
        writes = Table(box=None, pad_edge=False, header_style="italic")
        for column in ("node", "key", "value"):
            writes.add_column(column)
        for write in snapshot.pending_writes:
            writes.add_row(write.node, write.key, clip(to_json(write.value), width))
        table.add_row("pending writes", writes)
    else:
        table.add_row("pending writes", "-")
    values = Text(to_json(snapshot.values, indent=2))
    return Group(Text("values (the last completed step):", style="bold"), values, table)


def _request_summary(d: Mapping[str, Any]) -> str:
    by = f" by {d.get('requested_by')}" if d.get("requested_by") else ""
    return f"{d.get('kind')}: \"{d.get('message', '')}\"{by}"


def _checkpoint_summary(d: Mapping[str, Any]) -> str:
    cancelled = ", ".join(d.get("cancelled_tasks") or []) or "-"
    return (f"{d.get('checkpoint_id')}, pending writes kept: {d.get('pending_writes', 0)}, "
            f"cancelled tasks: {cancelled}")


def _terminate_summary(d: Mapping[str, Any]) -> str:
    latency = d.get("cancel_latency_ms")
    after = f", {latency} ms after the request" if latency is not None else ""
    return f"status {d.get('status')}{after}"


def _finish_summary(d: Mapping[str, Any]) -> str:
    error = d.get("error")
    where = d.get("traceback")
    return (f"status {d.get('status')}" + (f": {error}" if error else "")
            + (f"\n{where}" if where else ""))


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "request": _request_summary,
    "propagate": lambda d: f"kind {d['kind']}" if "kind" in d else str(d.get("detail", "?")),
    "terminate_node": lambda d: str(d.get("how") or d.get("detail", "?")),
    "cleanup": lambda d: f"{d['hook']}: {d.get('outcome', '?')}" if "hook" in d
    else str(d.get("detail", "?")),
    "checkpoint": _checkpoint_summary,
    "terminate": _terminate_summary,
    "finish": _finish_summary,
}


def phase_summary(phase: str, detail: Mapping[str, Any]) -> str:
    """A short reading of an audit-log event's detail."""
    summary = _SUMMARIES.get(phase)
    if summary is not None and detail:
        return summary(detail)
    return to_json(detail) if detail else ""


def events_table(events: Iterable[RunEvent]) -> Table:
    """The audit log: phase, time, offset from the first event, node, detail."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("phase", "at (UTC)", "+ms", "node"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    first: datetime | None = None
    for event in events:
        first = first or event.at
        offset = (event.at - first).total_seconds() * 1000.0
        style = "yellow" if event.phase in CANCEL_PHASES else ""
        table.add_row(Text(event.phase, style=style), when(event.at)[11:], f"{offset:.1f}",
                      event.node or "", phase_summary(event.phase, event.detail))
    return table


__all__ = [
    "CANCEL_PHASES",
    "clip",
    "duration",
    "events_table",
    "jsonable",
    "make_console",
    "phase_summary",
    "reason_text",
    "record_table",
    "runs_table",
    "snapshot_view",
    "status_text",
    "to_json",
    "when",
]
