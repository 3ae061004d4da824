"""The live view of a run in the terminal: the step, the nodes running and for how long, the
elapsed time; and one printed line per stream chunk as it arrives."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console, RenderableType
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from tether.cli.display import clip, phase_summary, to_json

PROGRESS_MODE = "debug"
"""The stream mode the view reads steps and task starts from (LangGraph's `debug` events)."""


class Progress:
    """What the live display shows; fed with the run's chunks, rendered by rich on refresh."""

    def __init__(self, run_id: str, hint: str = "Ctrl-C cancels (resumable), twice forces") -> None:
        self.run_id = run_id
        self.started = time.monotonic()
        self.step: int | None = None
        self.running: dict[str, tuple[str, float]] = {}
        """Task id → (node name, monotonic start) of the tasks of the current step."""
        self.finished = 0
        self.phase = "running"
        self.hint = hint
        self._starting: list[str] = []
        self._held_at = 0.0

    def feed(self, mode: str, payload: Any) -> str | None:
        """Take in one chunk; returns a line to print before it, or None.

        The tasks of a step start together: their names are held back and printed as one
        `▶ step N  a, b, c` line before the next chunk of another kind (or by `flush` when
        nothing else comes), leaving out the tasks whose results were kept from a cancelled
        run (their update says `cached`).
        """
        if mode == PROGRESS_MODE and isinstance(payload, Mapping):
            kind = payload.get("type")
            task = payload.get("payload") or {}
            if kind == "task":
                self.step = int(payload.get("step", self.step or 0))
                self.running[str(task.get("id"))] = (str(task.get("name")), time.monotonic())
                if not self._starting:
                    self._held_at = time.monotonic()
                self._starting.append(str(task.get("name")))
                return None
            if kind == "task_result" and self.running.pop(str(task.get("id")), None):
                self.finished += 1
        if mode == "updates" and isinstance(payload, Mapping) and _cached(payload):
            for node in payload:
                self._skip(node)
        return self.flush()

    def flush(self, older_than: float = 0.0) -> str | None:
        """The held-back `▶ step` line, if any (and held for at least `older_than` seconds)."""
        if not self._starting or time.monotonic() - self._held_at < older_than:
            return None
        line = f"▶ step {self.step}  {', '.join(self._starting)}"
        self._starting.clear()
        return line

    def _skip(self, node: str) -> None:
        if node in self._starting:
            self._starting.remove(node)
        for task_id, (name, _since) in list(self.running.items()):
            if name == node:
                del self.running[task_id]

    def cancelling(self, why: str) -> None:
        """Show that a cancel is under way."""
        self.phase = "cancelling"
        self.hint = why

    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        nodes = " · ".join(f"{name} {now - since:.1f}s"
                           for name, since in self.running.values()) or "-"
        step = "-" if self.step is None else str(self.step)
        line = Text.assemble(
            (f"{self.phase} ", "yellow" if self.phase == "cancelling" else "cyan"),
            ("step ", "dim"), (step, "bold"),
            ("  elapsed ", "dim"), (f"{now - self.started:.1f}s", "bold"),
            ("  running ", "dim"), (nodes, ""),
            ("  tasks done ", "dim"), (str(self.finished), ""),
            (f"   {self.hint}", "dim italic"),
        )
        grid = Table.grid(padding=(0, 1))
        grid.add_row(Spinner("dots", style="yellow" if self.phase == "cancelling" else "cyan"),
                     line)
        return grid


_PHASE_GLOSS = {
    "request": "cancel recorded durably",
    "propagate": "cancel scope cancelled: no new step or task starts",
    "terminate_node": "node stopped",
    "cleanup": "cleanup hook ran",
    "checkpoint": "final checkpoint written",
    "terminate": "run ended",
}


class ChunkPrinter:
    """Prints each chunk as one line: node updates, lifecycle phases, and the modes asked for."""

    def __init__(self, console: Console, shown: frozenset[str]) -> None:
        self.console = console
        self.shown = shown

    def show(self, mode: str, payload: Any) -> None:
        """Print one chunk (if its mode is shown)."""
        if mode not in self.shown:
            return
        if mode == "updates" and isinstance(payload, Mapping):
            self._updates(payload)
        elif mode == "lifecycle" and isinstance(payload, Mapping):
            self._lifecycle(payload)
        elif mode == "messages" and isinstance(payload, tuple) and len(payload) == 2:
            message, metadata = payload
            node = metadata.get("langgraph_node", "") if isinstance(metadata, Mapping) else ""
            self._line(Text.assemble(("[messages] ", "dim"), (f"{node} ", "bold"),
                                     self._clip(to_json(getattr(message, "content", message)),
                                                len(str(node)) + 12)))
        else:
            self._line(Text.assemble((f"[{mode}] ", "dim"), self._clip(to_json(payload), 8)))

    def _updates(self, payload: Mapping[str, Any]) -> None:
        cached = _cached(payload)
        for node, update in payload.items():
            if node == "__metadata__":
                continue
            if node == "__interrupt__":
                self._line(Text.assemble(("⏸ interrupt ", "magenta bold"),
                                         self._clip(to_json(update), 12)))
                continue
            note = "  (kept from before the cancel: not run again)" if cached else ""
            self._line(Text.assemble(("✓ ", "green"), (f"{node} ", "bold"),
                                     self._clip(to_json(update), len(node) + 3 + len(note)),
                                     (note, "green italic")))

    def _lifecycle(self, payload: Mapping[str, Any]) -> None:
        phase = str(payload.get("phase"))
        if phase not in _PHASE_GLOSS:
            return
        detail = payload.get("detail") or {}
        node = payload.get("node")
        extra = "  " + phase_summary(phase, detail) if detail else ""
        text = Text.assemble(("⏹ " if phase == "request" else "  ", "yellow"),
                             (f"{phase:<15}", "yellow bold"), _PHASE_GLOSS[phase],
                             (f" [{node}]" if node else "", "bold"), (extra, "dim"))
        self._line(text)

    def _clip(self, text: str, used: int) -> str:
        return clip(text, max(self.console.width - used, 20))

    def _line(self, text: Text) -> None:
        self.console.print(text, overflow="ellipsis", no_wrap=True)


def _cached(payload: Mapping[str, Any]) -> bool:
    meta = payload.get("__metadata__")
    return isinstance(meta, Mapping) and bool(meta.get("cached"))


__all__ = ["PROGRESS_MODE", "ChunkPrinter", "Progress"]
