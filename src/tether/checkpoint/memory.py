"""`InMemorySaver`: the store protocol in process memory, for tests and short-lived programs.

Values are serialized on the way in, as with the durable backends, so a node that later mutates
an object it returned cannot rewrite history. Thread-safe: one lock guards everything.
"""

from __future__ import annotations

import dataclasses
import operator
import threading
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.checkpoint.base import (
    CheckpointRecord,
    CheckpointStore,
    FinishResult,
    RunFinish,
    StoredCheckpoint,
    ThreadRecord,
    WriteRecord,
)
from tether.checkpoint.finish_rule import refusal
from tether.checkpoint.json_fit import check_metadata
from tether.checkpoint.serde import Serializer, place
from tether.checkpoint.store_records import ThreadQuery, write_records
from tether.errors import RunError
from tether.types import (
    TERMINAL_STATUSES,
    CancelReason,
    RunEvent,
    RunInfo,
    RunStatus,
    utcnow,
)


@dataclass(slots=True)
class _Checkpoint:
    record: CheckpointRecord
    writes: list[tuple[str, str, int, str, bytes]] = field(default_factory=list)


class _Request:
    """A run's `request` event as stored: its reason, made into the event when the log is
    first read (`InMemorySaver.events`). Every cancel records one, and most logs are never
    read (a graph without a checkpointer keeps its runs here): the reason's `to_dict` (a
    datetime formatted as text) is paid by whoever reads it, not by every cancel. The event is
    the same either way: the reason is frozen, and its evidence the very dict `to_dict` gives.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: CancelReason) -> None:
        self.reason = reason

    def event(self) -> RunEvent:
        """The event it stands for, as `request_cancel` would have made it at once."""
        reason = self.reason
        return RunEvent("request", reason.requested_at, None, reason.to_dict())


class InMemorySaver(CheckpointStore):
    """A complete store in memory. Nothing survives the process.

    Args:
        max_finished_runs: forget the oldest finished runs beyond this many (None: keep all).
        serde: the serializer for state values.
    """

    def __init__(self, *, max_finished_runs: int | None = None,
                 serde: Serializer | None = None) -> None:
        self.serde = serde or Serializer()
        self._lock = threading.RLock()
        self._runs: dict[str, RunInfo] = {}
        # A run's audit log; its `request` event is kept unformatted until read (`_Request`).
        self._events: dict[str, list[RunEvent | _Request]] = {}
        # A deque: forgetting the oldest is O(1) (a list's `pop(0)` moves every id after it).
        self._finished: deque[str] = deque()
        self._max_finished = max_finished_runs
        # (thread_id, ns) -> checkpoints oldest first; ids are time-ordered.
        self._threads: dict[tuple[str, str], list[_Checkpoint]] = {}
        self._by_id: dict[tuple[str, str, str], _Checkpoint] = {}
        self._blobs: dict[tuple[str, str, str, str], bytes] = {}
        self._thread_records: dict[str, ThreadRecord] = {}
        # The latest checkpoint of each run in flight, folded into its record when read.
        self._heads: dict[str, str] = {}

    # -- runs -----------------------------------------------------------------------------

    def create_run(self, info: RunInfo) -> RunInfo:
        with self._lock:
            if info.run_id in self._runs:
                raise ValueError(f"run {info.run_id!r} already exists")
            self._runs[info.run_id] = info
            self._events[info.run_id] = []
        return info

    def get_run(self, run_id: str) -> RunInfo | None:
        with self._lock:
            info = self._runs.get(run_id)
            return self._with_head(info) if info is not None else None

    def _with_head(self, info: RunInfo) -> RunInfo:
        head = self._heads.get(info.run_id)
        if head is None or head == info.checkpoint_id:
            return info
        return _replace(info, checkpoint_id=head)

    def list_runs(self, *, thread_id: str | None = None, status: RunStatus | str | None = None,
                  limit: int | None = None) -> list[RunInfo]:
        with self._lock:
            runs = [self._with_head(r) for r in self._runs.values()]
        out = [
            r for r in reversed(runs)
            if (thread_id is None or r.thread_id == thread_id)
            and (status is None or r.status == status)
        ]
        return out[:limit] if limit is not None else out

    def mark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        with self._lock:
            info = self._with_head(self._runs[run_id])
            if not info.status.can_become(RunStatus.RUNNING, "mark_running") \
                    or info.reason is not None:
                return None
            info = _replace(
                info, status=RunStatus.RUNNING, started_at=info.started_at or utcnow()
            )
            self._runs[run_id] = info
            self._events[run_id].extend(events)
            return info

    def request_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        with self._lock:
            info = self._with_head(self._runs[run_id])
            if not info.status.can_become(RunStatus.CANCELLING, "request_cancel") \
                    or info.reason is not None:
                return info, False
            # Every cancel: each field read by its slot and passed by position (no keywords,
            # no list of all fields); `test_memory_records` holds it to `dataclasses.replace`.
            info = RunInfo(info.run_id, info.thread_id, RunStatus.CANCELLING, reason,
                           info.created_at, info.started_at, info.ended_at, info.checkpoint_id,
                           info.error, info.cancel_latency_ms, info.metadata, info.error_node,
                           info.error_traceback)
            self._runs[run_id] = info
            self._events[run_id].append(_Request(reason))
            return info, True

    async def arequest_cancels(
        self, requests: Sequence[tuple[str, CancelReason]],
    ) -> list[tuple[RunInfo, bool] | Exception]:
        """Record many cancel requests under one hold of the lock (one transaction).

        Cancellation:
            Nothing to interrupt: it does not suspend. Safe to retry.
        """
        out: list[tuple[RunInfo, bool] | Exception] = []
        with self._lock:
            for run_id, reason in requests:
                try:
                    out.append(self.request_cancel(run_id, reason))
                except Exception as exc:  # noqa: BLE001 - that run's answer
                    out.append(exc)
        return out

    def finish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        with self._lock:
            info = self._with_head(self._runs[run_id])
            refused = refusal(info, finish)
            if refused is not None:
                return refused
            if finish.checkpoints or (finish.writes and finish.thread_id is not None):
                # A run without a checkpointer has no thread: its writes have nowhere to go.
                self._store_final(info, finish)
            terminal = finish.status in TERMINAL_STATUSES
            reason = finish.reason
            # Every run's end: as in `request_cancel`, each field by position.
            info = RunInfo(info.run_id, info.thread_id, finish.status,
                           info.reason if reason is None else reason, info.created_at,
                           info.started_at, utcnow() if terminal else None,
                           finish.checkpoint_id or info.checkpoint_id, finish.error,
                           finish.cancel_latency_ms, info.metadata, finish.error_node,
                           finish.error_traceback)
            self._runs[run_id] = info
            self._events[run_id].extend(finish.events)
            if terminal:
                self._heads.pop(run_id, None)
                self._retire(run_id)
            return FinishResult(info, applied=True)

    def _store_final(self, info: RunInfo, finish: RunFinish) -> None:
        """Store the checkpoints and pending writes of a run's last transaction (under the
        lock). Everything that can fail (serializing, a missing checkpoint) happens before any
        change, so a failed finish leaves the store as it was."""
        blobs = [self._serialize_blobs(record) for record in finish.checkpoints]
        rows: list[tuple[str, str, int, str, bytes]] = []
        ns = str(info.metadata.get("checkpoint_ns", ""))
        if finish.writes and finish.checkpoint_id is not None and finish.thread_id is not None:
            rows = self._serialize_writes(finish.writes)
            staged = {r.id for r in finish.checkpoints}
            if (finish.thread_id, ns, finish.checkpoint_id) not in self._by_id and \
                    finish.checkpoint_id not in staged:
                raise KeyError(f"no checkpoint {finish.checkpoint_id!r} in thread "
                               f"{finish.thread_id!r}")
        for record, serialized in zip(finish.checkpoints, blobs, strict=True):
            self._store_checkpoint(record, serialized)
        if rows:
            assert finish.thread_id is not None and finish.checkpoint_id is not None
            self._store_writes(finish.thread_id, ns, finish.checkpoint_id, rows)

    def _retire(self, run_id: str) -> None:
        if self._max_finished is None:
            return
        self._finished.append(run_id)
        while len(self._finished) > self._max_finished:
            old = self._finished.popleft()
            self._runs.pop(old, None)
            self._events.pop(old, None)

    def append_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        with self._lock:
            self._events.setdefault(run_id, []).extend(events)

    def events(self, run_id: str) -> list[RunEvent]:
        with self._lock:
            stored = self._events.get(run_id, [])
            out: list[RunEvent] = []
            for i, kept in enumerate(stored):
                if isinstance(kept, _Request):  # made once and kept: every read sees one event
                    made = stored[i] = kept.event()
                    out.append(made)
                else:
                    out.append(kept)
            return out

    # -- threads ----------------------------------------------------------------------------

    def put_thread(self, thread_id: str, metadata: dict[str, Any] | None = None) -> ThreadRecord:
        check_metadata(metadata, "thread metadata")
        with self._lock:
            now = utcnow()
            old = self._thread_records.get(thread_id)
            if old is None:
                record = ThreadRecord(thread_id, now, now, dict(metadata or {}))
            else:
                record = dataclasses.replace(old, updated_at=now,
                                             metadata={**old.metadata, **(metadata or {})})
            self._thread_records[thread_id] = record
            return record

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        with self._lock:
            record = self._thread_records.get(thread_id)
            if record is not None:
                return record
            if thread_id in self.list_threads():
                info = next((r for r in self._runs.values() if r.thread_id == thread_id), None)
                at = info.created_at if info is not None else utcnow()
                return ThreadRecord(thread_id, at, at, {})
            return None

    def search_threads(self, *, metadata: dict[str, Any] | None = None,
                       ids: Collection[str] | None = None, sort_by: str = "updated_at",
                       ascending: bool = False, limit: int = 10,
                       offset: int = 0) -> list[ThreadRecord]:
        query = ThreadQuery.of(metadata=metadata, ids=ids, sort_by=sort_by,
                               ascending=ascending, limit=limit, offset=offset)
        return query.page(self._thread_candidates(query))

    def count_threads(self, *, metadata: dict[str, Any] | None = None,
                      ids: Collection[str] | None = None) -> int:
        query = ThreadQuery.of(metadata=metadata, ids=ids)
        return sum(map(query.matches, self._thread_candidates(query)))

    def _thread_candidates(self, query: ThreadQuery) -> list[ThreadRecord]:
        """The thread records `query` may match: those of its ids, or all."""
        with self._lock:
            known = self._thread_records
            return list(known.values() if query.ids is None
                        else (known[i] for i in query.ids if i in known))

    # -- checkpoints ------------------------------------------------------------------------

    def put_checkpoint(self, record: CheckpointRecord) -> None:
        serialized = self._serialize_blobs(record)
        with self._lock:
            self._store_checkpoint(record, serialized)

    def put_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Store checkpoints in their order, all at once (under one hold of the lock)."""
        serialized = [self._serialize_blobs(record) for record in records]
        with self._lock:
            for record, blobs in zip(records, serialized, strict=True):
                self._store_checkpoint(record, blobs)

    async def aput_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Async twin of `put_checkpoints`.

        Cancellation:
            No await: all of them are stored, or none (a value that cannot be serialized).
        """
        self.put_checkpoints(records)

    def _serialize_blobs(self, record: CheckpointRecord) -> dict[str, bytes]:
        return self.serde.dumps_each(record.blobs)

    def _store_checkpoint(self, record: CheckpointRecord, serialized: dict[str, bytes]) -> None:
        for channel, blob in serialized.items():
            self._blobs[(record.thread_id, record.ns, channel, record.id)] = blob
        # The record without its values (they live, serialized, in _blobs).
        bare = CheckpointRecord(record.thread_id, record.ns, record.id, record.parent_id,
                                record.step, record.source, record.refs, {}, record.next,
                                record.metadata, record.run_id, record.created_at)
        stored = _Checkpoint(bare)
        self._threads.setdefault((record.thread_id, record.ns), []).append(stored)
        self._by_id[(record.thread_id, record.ns, record.id)] = stored
        run_id = record.run_id
        if run_id is not None and not record.ns:
            info = self._runs.get(run_id)
            if info is not None and info.status not in TERMINAL_STATUSES:
                self._heads[run_id] = record.id

    def put_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   writes: Sequence[WriteRecord]) -> None:
        rows = self._serialize_writes(writes)
        with self._lock:
            if (thread_id, ns, checkpoint_id) not in self._by_id:
                raise KeyError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
            self._store_writes(thread_id, ns, checkpoint_id, rows)

    def _serialize_writes(self, writes: Sequence[WriteRecord]
                          ) -> list[tuple[str, str, int, str, bytes]]:
        dumps = self.serde.dumps
        return [(w.task_id, w.task_name, w.idx, w.channel, dumps(w.value, w.channel))
                for w in writes]

    def _store_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                      rows: list[tuple[str, str, int, str, bytes]]) -> None:
        stored = self._by_id[(thread_id, ns, checkpoint_id)]
        position = {(w[0], w[2]): i for i, w in enumerate(stored.writes)}
        for row in rows:
            task, idx = row[0], row[2]
            at = position.get((task, idx))
            if at is None:
                position[(task, idx)] = len(stored.writes)
                stored.writes.append(row)
            elif idx < 0:
                # Control writes (interrupt, error, cancelled) record the task's latest fate.
                stored.writes[at] = row

    def _resolve(self, stored: _Checkpoint) -> StoredCheckpoint:
        record = stored.record

        def loads(data: bytes, channel: str) -> Any:
            return self.serde.loads(data, place(record.thread_id, record.id, channel))

        values: dict[str, Any] = {}
        for channel, ref in record.refs.items():
            blob = self._blobs.get((record.thread_id, record.ns, channel, ref))
            if blob is not None:
                values[channel] = loads(blob, channel)
        writes = write_records(record.thread_id, record.id, stored.writes, self.serde)
        return StoredCheckpoint(
            record.thread_id, record.ns, record.id, record.parent_id, record.step,
            record.source, record.created_at, values, dict(record.refs), record.next,
            dict(record.metadata), record.run_id, writes,
        )

    def get_checkpoint(self, thread_id: str, ns: str = "",
                       checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        with self._lock:
            if checkpoint_id is None:
                history = self._threads.get((thread_id, ns))
                stored = history[-1] if history else None
            else:
                stored = self._by_id.get((thread_id, ns, checkpoint_id))
            return self._resolve(stored) if stored is not None else None

    def get_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   channel: str) -> tuple[WriteRecord, ...]:
        with self._lock:
            stored = self._by_id.get((thread_id, ns, checkpoint_id))
            rows = [w for w in stored.writes if w[3] == channel] if stored is not None else []
        return write_records(thread_id, checkpoint_id, rows, self.serde)

    def list_checkpoints(self, thread_id: str, ns: str = "", *, before: str | None = None,
                         limit: int | None = None) -> Iterator[StoredCheckpoint]:
        with self._lock:
            history = list(self._threads.get((thread_id, ns), ()))
        count = 0
        for stored in reversed(history):
            if before is not None and stored.record.id >= before:
                continue
            if limit is not None and count >= limit:
                return
            count += 1
            with self._lock:
                resolved = self._resolve(stored)
            yield resolved

    def list_threads(self, limit: int | None = None) -> list[str]:
        with self._lock:
            latest: dict[str, str] = {}
            for (thread_id, _ns), history in self._threads.items():
                if history:
                    latest[thread_id] = max(latest.get(thread_id, ""), history[-1].record.id)
            for info in self._runs.values():
                if info.thread_id is not None:
                    latest.setdefault(info.thread_id, "")
        ordered = sorted(latest, key=lambda t: latest[t], reverse=True)
        return ordered[:limit] if limit is not None else ordered

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            for thread_key in [k for k in self._threads if k[0] == thread_id]:
                del self._threads[thread_key]
            for id_key in [k for k in self._by_id if k[0] == thread_id]:
                del self._by_id[id_key]
            for blob_key in [k for k in self._blobs if k[0] == thread_id]:
                del self._blobs[blob_key]
            self._thread_records.pop(thread_id, None)
            for run_id in [r for r, i in self._runs.items() if i.thread_id == thread_id]:
                del self._runs[run_id]
                self._events.pop(run_id, None)

    def copy_thread(self, source: str, target: str) -> None:
        with self._lock:
            if any(key[0] == target for key in self._threads):
                raise ValueError(f"thread {target!r} already has checkpoints")
            for (thread_id, ns), history in list(self._threads.items()):
                if thread_id != source:
                    continue
                copies = [_Checkpoint(dataclasses.replace(stored.record, thread_id=target,
                                                          run_id=None), list(stored.writes))
                          for stored in history]
                self._threads[target, ns] = copies
                for copy in copies:
                    self._by_id[target, ns, copy.record.id] = copy
            for (thread_id, ns, channel, checkpoint_id), blob in list(self._blobs.items()):
                if thread_id == source:
                    self._blobs[target, ns, channel, checkpoint_id] = blob

    def delete_run(self, run_id: str) -> bool:
        with self._lock:
            info = self._runs.get(run_id)
            if info is None:
                return False
            if not info.status.at_rest:
                raise RunError(f"run {run_id!r} is {info.status.value}; cancel it before "
                               "deleting it")
            del self._runs[run_id]
            self._events.pop(run_id, None)
            self._heads.pop(run_id, None)
            return True

    def delete_run_checkpoints(self, run_id: str) -> None:
        with self._lock:
            for key, history in self._threads.items():
                doomed = [c for c in history if c.record.run_id == run_id]
                for stored in doomed:
                    history.remove(stored)
                    self._by_id.pop((key[0], key[1], stored.record.id), None)
                    for channel in stored.record.refs:
                        self._blobs.pop((key[0], key[1], channel, stored.record.id), None)


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunInfo))
_FIELD_INDEX = {name: i for i, name in enumerate(_RUN_FIELDS)}
_ALL_FIELDS = operator.attrgetter(*_RUN_FIELDS)


def _replace(info: RunInfo, **changes: Any) -> RunInfo:
    # dataclasses.replace re-inspects the fields on every call and passes them by keyword:
    # this is on every run's start. Every field is read at once (in C), the
    # changed ones swapped, and the record made from them by position (`RunInfo` is a
    # `fast_record`: no per-field `object.__setattr__`).
    values = list(_ALL_FIELDS(info))
    for name, value in changes.items():
        values[_FIELD_INDEX[name]] = value
    return RunInfo(*values)


MemorySaver = InMemorySaver

__all__ = ["InMemorySaver", "MemorySaver"]
