"""The SQLite file under stress: a process killed mid-run, orphaned runs found and resumed, and
files that are not ours (or are newer than us) refused without being changed."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint.owner import current as current_owner
from tether.checkpoint.sqlite import AsyncSqliteSaver, SqliteSaver, _sql, schema
from tether.errors import CorruptStoreError, SchemaVersionError
from tether.types import CancelReason, RunInfo, RunStatus

STEPS = 40

# Run by the child process and exec'd by the test, so both build the very same graph.
GRAPH = textwrap.dedent(f"""
    import operator, sys, time
    from typing import Annotated, TypedDict
    from tether.graph import StateGraph, START, END

    class Loop(TypedDict):
        n: int
        total: int
        log: Annotated[list[str], operator.add]

    def step(state, delay=0.0):
        n = state["n"]
        if delay:
            print(f"step {{n}}", flush=True)
            time.sleep(delay)
        return {{"n": n + 1, "total": state["total"] + n, "log": [f"s{{n}}"]}}

    def build(store, delay=0.0):
        builder = StateGraph(Loop).add_node("step", lambda s: step(s, delay))
        builder.add_edge(START, "step")
        builder.add_conditional_edges("step", lambda s: END if s["n"] >= {STEPS} else "step")
        return builder.compile(checkpointer=store)
""")

CHILD = GRAPH + textwrap.dedent("""
    from tether.checkpoint.sqlite import SqliteSaver
    build(SqliteSaver(sys.argv[1]), delay=0.02).invoke(
        {"n": 0, "total": 0, "log": []},
        {"configurable": {"thread_id": "t"}, "recursion_limit": 1000})
    print("finished", flush=True)
""")


def graph_module() -> types.ModuleType:
    """`GRAPH` as an importable module (the state schema's annotations resolve through it)."""
    module = sys.modules.get("_tether_crash_graph")
    if module is None:
        module = types.ModuleType("_tether_crash_graph")
        sys.modules[module.__name__] = module
        exec(compile(GRAPH, "<crash-graph>", "exec"), module.__dict__)
    return module


def final_state() -> dict[str, Any]:
    return {"n": STEPS, "total": STEPS * (STEPS - 1) // 2, "log": [f"s{i}" for i in range(STEPS)]}


def wait_for_line(proc: subprocess.Popen[str], wanted: str, timeout: float) -> list[str]:
    """Lines the child printed, up to and including `wanted` (or fail after `timeout`)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        if seen[-1] == wanted:
            return seen
    raise AssertionError(f"child never printed {wanted!r}; it printed {seen}")


def kill_mid_run(path: Path) -> int:
    """Start the child, SIGKILL it a few steps in, reap it; return its pid."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        try:
            wait_for_line(proc, "step 6", timeout=30)
        except AssertionError as exc:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"{exc}\nchild stderr:\n{err}") from None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


@pytest.mark.anyio
async def test_sigkill_mid_run_leaves_an_intact_checkpoint_and_an_orphan_that_resumes(
        tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    pid = kill_mid_run(path)

    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()

    with SqliteSaver(path, reconcile=False) as store:
        (orphan,) = store.find_orphans()
        assert orphan.status is RunStatus.RUNNING and orphan.thread_id == "t"
        last_checkpoint = orphan.checkpoint_id

    store = SqliteSaver(path)  # reconciles on open
    try:
        info = store.get_run(orphan.run_id)
        assert info is not None and info.status is RunStatus.ERROR
        assert info.error == f"orphaned: the process running it died (pid {pid})"
        assert info.checkpoint_id == last_checkpoint is not None
        events = store.events(orphan.run_id)
        assert events[-1].phase == "orphan" and events[-1].detail["pid"] == pid
        assert store.find_orphans() == []

        snap = store.load(orphan.run_id)
        n = snap.values["n"]
        assert 6 <= n < STEPS  # "step 6" is printed by a step that started from n == 6
        assert snap.values == {"n": n, "total": n * (n - 1) // 2,
                               "log": [f"s{i}" for i in range(n)]}
        latest = store.get_checkpoint("t")
        assert latest is not None and latest.id == snap.checkpoint_id

        graph = graph_module().build(store)
        resumed = graph.resume(orphan.run_id, {"recursion_limit": 1000})
        assert await asyncio.wait_for(resumed.result(), 30) == final_state()
        assert store.load(resumed.run_id).status is RunStatus.SUCCESS
        fresh = await asyncio.wait_for(graph.ainvoke(
            {"n": 0, "total": 0, "log": []},
            {"configurable": {"thread_id": "fresh"}, "recursion_limit": 1000}), 30)
        assert fresh == final_state()
    finally:
        store.close()


# -- orphans --------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def _set_owner(path: Path, run_id: str, owner: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("UPDATE runs SET owner = ? WHERE run_id = ?", (owner, run_id))
    finally:
        conn.close()


def test_only_runs_of_dead_processes_of_this_host_are_orphans(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    host = socket.gethostname()
    with SqliteSaver(path) as store:
        runs = {name: store.create_run(RunInfo(name, "t", RunStatus.PENDING)).run_id
                for name in ("live", "dead", "elsewhere", "reused", "paused", "ended")}
        for run_id in runs.values():
            store.mark_running(run_id)
        store.finish_run("paused", _finish(RunStatus.INTERRUPTED))
        store.finish_run("ended", _finish(RunStatus.SUCCESS))
        store.request_cancel("dead", CancelReason("user", "before the crash"))
        dead = _dead_pid()
        for run_id in ("dead", "paused", "ended"):
            _set_owner(path, run_id, f"{host}:{dead}:x")
        _set_owner(path, "elsewhere", f"another-host:{dead}:x")
        _set_owner(path, "reused", f"{host}:{os.getpid()}:not-this-process")
        assert {r.run_id for r in store.find_orphans()} == {"dead", "reused"}
        assert {r.run_id for r in store.find_orphans(lambda owner: False)} == {
            "live", "dead", "elsewhere", "reused"}
        ended = store.reconcile_orphans()
        assert {r.run_id for r in ended} == {"dead", "reused"}
        dead_info = store.get_run("dead")
        assert dead_info is not None and dead_info.status is RunStatus.ERROR
        assert dead_info.reason is not None and dead_info.reason.message == "before the crash"
        assert store.reconcile_orphans() == []
        live = store.get_run("live")
        assert live is not None and live.status is RunStatus.RUNNING


def _finish(status: RunStatus) -> Any:
    from tether.checkpoint.base import RunFinish

    return RunFinish(status=status)


def test_the_owner_of_a_run_is_this_process(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "o.db") as store:
        store.create_run(RunInfo("r", "t", RunStatus.PENDING))
        conn = sqlite3.connect(tmp_path / "o.db")
        try:
            (owner,) = conn.execute("SELECT owner FROM runs WHERE run_id = 'r'").fetchone()
        finally:
            conn.close()
    assert owner == current_owner()
    assert owner.startswith(f"{socket.gethostname()}:{os.getpid()}:")


# -- the file -------------------------------------------------------------------------------


def test_opening_a_missing_file_creates_a_wal_database_of_the_latest_schema(
        tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with SqliteSaver(path) as store:
        store.create_run(RunInfo("r", "t", RunStatus.PENDING))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (schema.LATEST_VERSION,)
        assert conn.execute("PRAGMA application_id").fetchone() == (_sql.APPLICATION_ID,)
    finally:
        conn.close()


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SqliteSaver(tmp_path / "no" / "such" / "dir.db")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("content", [b"hello, this is my diary\n" * 100, b"\x00" * 4096],
                         ids=["text", "zeros"])
def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(CorruptStoreError, match=r"notes\.db"):
        SqliteSaver(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_sqlite_database_of_another_application_is_refused_and_left_untouched(
        tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match="not a tether one"):
        SqliteSaver(path)
    assert path.read_bytes() == before


def test_a_database_from_a_newer_tether_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with SqliteSaver(path) as store:
        store.create_run(RunInfo("r", "t", RunStatus.PENDING))
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.LATEST_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError, match="newer tether"):
        SqliteSaver(path)
    assert path.read_bytes() == before


def test_an_older_schema_is_migrated_forward_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(_sql.SET_JOURNAL_WAL)
    for statement in _sql.MIGRATIONS[0][1]:
        conn.execute(statement)
    conn.execute(_sql.set_application_id(_sql.APPLICATION_ID))
    conn.execute(_sql.set_user_version(1))
    conn.execute("INSERT INTO runs (run_id, thread_id, status, created_at) "
                 "VALUES ('old', 't', 'success', '2020-01-01T00:00:00+00:00')")
    conn.close()
    with SqliteSaver(path) as store:
        info = store.get_run("old")
        assert info is not None and info.status is RunStatus.SUCCESS
        store.put_thread("t", {"migrated": True})
        record = store.get_thread("t")
        assert record is not None and record.metadata == {"migrated": True}
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (schema.LATEST_VERSION,)
    finally:
        conn.close()


FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    from typing import TypedDict
    from tether.checkpoint.sqlite import SqliteSaver
    from tether.graph import END, START, StateGraph

    class Big(TypedDict):
        blob: str

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead
    store = SqliteSaver(sys.argv[1])
    builder = StateGraph(Big).add_node("grow", lambda s: {"blob": s["blob"] + "x" * 4000})
    graph = builder.add_edge(START, "grow").add_edge("grow", END).compile(checkpointer=store)
    graph.invoke({"blob": ""}, {"configurable": {"thread_id": "before"}})
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))
    try:
        for n in range(10_000):
            graph.invoke({"blob": ""}, {"configurable": {"thread_id": f"t{n}"}})
    except BaseException as exc:
        print(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
""")


def test_a_full_disk_is_a_clear_store_error_and_the_file_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("tether.errors.StoreError: "), done.stdout
    assert "disk is full or failing" in done.stdout
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    with SqliteSaver(path) as store:
        assert store.get_checkpoint("before") is not None
        assert store.list_runs(status="running") == []


def test_synchronous_full_is_an_option(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "full.db", synchronous="full") as store:
        assert store._db.one("PRAGMA synchronous") == (2,)
    with pytest.raises(ValueError, match="synchronous"):
        SqliteSaver(tmp_path / "bad.db", synchronous="sometimes")  # type: ignore[arg-type]


def test_from_conn_string_opens_for_a_with_block_and_closes_after(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "cs.db")) as store:
        store.create_run(RunInfo("r", "t", RunStatus.PENDING))
    with pytest.raises(sqlite3.ProgrammingError):
        store.get_run("r")
    with SqliteSaver.from_conn_string(":memory:") as memory:
        memory.create_run(RunInfo("r", "t", RunStatus.PENDING))
        assert memory.get_run("r") is not None


@pytest.mark.anyio
async def test_async_sqlite_saver_opens_with_async_with(tmp_path: Path) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "a.db")) as store:
        await store.acreate_run(RunInfo("r", "t", RunStatus.PENDING))
        assert await store.aget_run("r") is not None
    async with SqliteSaver(tmp_path / "a.db") as again:
        assert again.get_run("r") is not None
