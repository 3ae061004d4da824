"""The servers, side by side: tether's server and LangGraph's in-memory Agent Server
(`langgraph dev`), each in its own process, driven over HTTP by the same client code.

- `http_cancel_p50` / `http_cancel_p99`: a client's `POST .../cancel?wait=1` until the answer
  that the run has ended (client request → run terminated), one long run at a time.
- `sse_streams`: hold N event streams at once on one live run until each has received an event
  (the time per stream; the JSON's `peak_rss_delta_kib` is the server process's RSS rise).

Only the server whose turn it is runs; the other is paused (SIGSTOP) meanwhile.

LangGraph's side needs `pip install langgraph-api langgraph-runtime-inmem langgraph-cli`; its
`langgraph` command is looked up as `$TETHER_BENCH_LANGGRAPH_CLI`, then next to this Python, then
on `PATH`. Without it that side is an error row that says so.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.libs import Lib
from bench.timing import Contest, Measurement, Outcome, Plan, within

ORDER = 40
FAMILY = "server"
LONG = {"count": 0, "limit": 10_000_000, "delay": 0.005}
SLOW = {"count": 0, "limit": 10_000_000, "delay": 0.1}
"""The run the streams follow: an event every 0.1 s (while its server keeps up)."""
_START_TIMEOUT = 90.0
_AGENT_SERVER_CANCEL = 0.005
"""§7's number for the Agent Server's HTTP cancel p50 (seconds)."""

GRAPH_SOURCE = '''
import asyncio
from typing import TypedDict
from {lib}.graph import StateGraph, END


class Count(TypedDict):
    count: int
    limit: int
    delay: float


async def tick(state: Count) -> dict:
    await asyncio.sleep(state["delay"])
    return {{"count": state["count"] + 1}}


def again(state: Count) -> str:
    return END if state["count"] >= state["limit"] else "tick"


builder = StateGraph(Count)
builder.add_node("tick", tick)
builder.set_entry_point("tick")
builder.add_conditional_edges("tick", again, {{"tick": "tick", END: END}})
graph = builder.compile()
'''

TETHER_SERVER = '''
import sys
sys.path.insert(0, sys.argv[1])
from server_graph_tether import graph
from tether.server import ServerLimits, serve
serve({"counter": graph}, db=sys.argv[3], port=int(sys.argv[2]), no_auth=True,
      log_level="warning", limits=ServerLimits(max_streams_per_key=1_000_000))
'''

LANGGRAPH_JSON = ('{"dependencies": ["."], '
                  '"graphs": {"counter": "./server_graph_langgraph.py:graph"}}')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def langgraph_cli() -> str | None:
    """LangGraph's `langgraph` command, if installed (see the module docstring)."""
    found = os.environ.get("TETHER_BENCH_LANGGRAPH_CLI")
    if found:
        return found
    beside = Path(sys.executable).with_name("langgraph")
    if beside.exists():
        return str(beside)
    return shutil.which("langgraph")


class ServerProcess:
    """One library's server in a child process, on a free port; stopped with SIGTERM."""

    def __init__(self, lib: str, workdir: Path) -> None:
        self.lib = lib
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / f"server_graph_{lib}.py").write_text(GRAPH_SOURCE.format(lib=lib))
        self.log = workdir / f"server-{lib}.log"
        self.command, self.env = self._command(workdir)
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self, workdir: Path) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.lib == "tether":
            import tether

            src = str(Path(tether.__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
            db = str(workdir / "server-tether.db")
            return [sys.executable, "-c", TETHER_SERVER, str(workdir), str(self.port), db], env
        cli = langgraph_cli()
        if cli is None:
            raise RuntimeError("LangGraph's Agent Server is not installed (pip install "
                               "langgraph-api langgraph-runtime-inmem langgraph-cli, or set "
                               "TETHER_BENCH_LANGGRAPH_CLI)")
        (workdir / "langgraph.json").write_text(LANGGRAPH_JSON)
        env.update(LANGSMITH_TRACING="false", LANGGRAPH_CLI_NO_ANALYTICS="1")
        return [cli, "dev", "--no-browser", "--no-reload", "--port", str(self.port),
                "--config", str(workdir / "langgraph.json"), "--n-jobs-per-worker", "1000",
                "--server-log-level", "WARNING"], env

    def __enter__(self) -> ServerProcess:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.workdir, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.lib} server exited: {self._tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/ok", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{self.lib} server did not answer within {_START_TIMEOUT:g}s")

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.resume()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def pause(self) -> None:
        """Stop the process (SIGSTOP) so that its idle work does not slow the other server."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process go on (SIGCONT)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def rss_kib(self) -> int | None:
        """The server process's resident memory (Linux), in KiB."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
        return int(line.split()[1]) if line else None

    def _tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(no output)"


_STARTED: dict[tuple[int, str], ServerProcess] = {}


def _stop_all() -> None:
    for server in _STARTED.values():
        server.__exit__()
    _STARTED.clear()


atexit.register(_stop_all)


@contextlib.contextmanager
def servers(libs: Sequence[Lib], plan: Plan, contest: Contest) -> Iterator[dict[str, Any]]:
    """Each library's server, started under `contest.guard` (a failure is that side's error).

    The servers are shared by the workloads of one bench run (they start once) and stopped
    when the process exits.
    """
    started: dict[str, ServerProcess] = {}
    for lib in libs:
        with contest.guard(lib.name):
            key = (id(plan), lib.name)
            if key not in _STARTED:
                server = ServerProcess(lib.name, plan.tmpdir)
                _STARTED[key] = server.__enter__()
                server.pause()
            started[lib.name] = _STARTED[key]
    yield started


@contextlib.contextmanager
def turn(running: dict[str, ServerProcess], name: str) -> Iterator[ServerProcess]:
    """`name`'s server, running alone: the others stay paused (LangGraph's idle server keeps
    a CPU busy, which would slow tether's turns on a small machine)."""
    server = running[name]
    server.resume()
    try:
        yield server
    finally:
        server.pause()


# -- the client side ------------------------------------------------------------------------------


async def _running_run(http: httpx.AsyncClient,
                       graph_input: dict[str, Any] = LONG) -> tuple[str, str]:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    answer = await http.post(f"/threads/{tid}/runs",
                             json={"assistant_id": "counter", "input": graph_input})
    answer.raise_for_status()
    run_id = answer.json()["run_id"]
    for _ in range(2000):
        run = (await http.get(f"/threads/{tid}/runs/{run_id}")).json()
        if run["status"] == "running":
            return tid, run_id
        await asyncio.sleep(0.005)
    raise RuntimeError(f"run {run_id} did not start")


async def _cancel_samples(url: str, count: int) -> tuple[list[float], int]:
    """`count` cancels of running runs: the latencies, and how many runs ended interrupted."""
    latencies: list[float] = []
    ended = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(count):
            tid, run_id = await _running_run(http)
            await asyncio.sleep(0.02)  # a few supersteps in
            started = time.perf_counter()
            answer = await http.post(f"/threads/{tid}/runs/{run_id}/cancel",
                                     params={"wait": 1, "action": "interrupt"})
            latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            run = (await http.get(f"/threads/{tid}/runs/{run_id}")).json()
            ended += run["status"] == "interrupted"
    return latencies, ended


@dataclass
class _CancelResults:
    outcomes: dict[str, Outcome]
    samples: dict[str, list[float]]


_CANCEL_CACHE: dict[tuple[int, tuple[str, ...]], _CancelResults] = {}


def _measure_cancels(libs: Sequence[Lib], plan: Plan, per_repeat: int) -> _CancelResults:
    key = (id(plan), tuple(lib.name for lib in libs))
    if key not in _CANCEL_CACHE:
        contest = Contest(plan, [lib.name for lib in libs])
        samples: dict[str, list[float]] = {lib.name: [] for lib in libs}
        ended: dict[str, int] = {lib.name: 0 for lib in libs}
        with servers(libs, plan, contest) as running:
            for index, name in contest.turns():
                with turn(running, name) as server, contest.lap(name):
                    found, ok = asyncio.run(within(
                        _cancel_samples(server.url, per_repeat), plan.timeout))
                    if index >= plan.warmup:
                        samples[name].extend(found)
                        ended[name] += ok
                        contest.results[name] = {"runs_ended_interrupted": ended[name]}
        _CANCEL_CACHE[key] = _CancelResults(contest.outcomes(per=per_repeat), samples)
    return _CANCEL_CACHE[key]


@dataclass
class HttpCancel:
    """Cancel over HTTP: `POST .../cancel?wait=1` until the server answers that the run ended.

    One quantile of all the cancels of all timed repeats (each repeat cancels `size` runs,
    each a few supersteps into an endless loop of 5 ms async nodes).

    With a `target` (seconds: §7's "HTTP cancel → run terminal, p50 ≤ 2 ms"), ✓ says that
    tether's own number meets it, whatever LangGraph's is, as in the cancel family: the row's
    `goal` is the target divided by LangGraph's number of the same run (before measuring, by
    §7's ~5 ms). Without one, the row compares the two servers (goal 1.0).
    """

    name: str
    quantile: float
    target: float | None = None
    size: int = 20
    quick_size: int = 2
    family: str = FAMILY
    mode: str = "http"
    unit: str = "cancel"
    _goal: float = 1.0

    def __post_init__(self) -> None:
        if self.target is not None:
            self._goal = self.target / _AGENT_SERVER_CANCEL

    @property
    def goal(self) -> float:
        return self._goal

    @property
    def doc(self) -> str:
        return (f"p{round(self.quantile * 100)} of client cancel request -> run terminated, "
                "over HTTP")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        results = _measure_cancels(libs, plan, self.quick_size if plan.quick else self.size)
        found: dict[str, Outcome] = {}
        for name, outcome in results.outcomes.items():
            samples = results.samples.get(name) or []
            if outcome.measurement is None or not samples:
                found[name] = outcome
                continue
            value = _quantile(samples, self.quantile)
            found[name] = Outcome(Measurement([value], 1, outcome.measurement.result))
        theirs = found.get("langgraph")
        if self.target is not None and theirs is not None and theirs.measurement is not None:
            self._goal = self.target / max(theirs.measurement.per_unit, 1e-9)
        return found


def _quantile(samples: list[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q * 100) - 1))]


@dataclass
class _Held:
    """One repeat of `sse_streams`: how many streams got an event, how long until all had
    one (all held open), and the server's RSS rise while it held them."""

    received: int
    seconds: float
    rss_rise_kib: int | None


async def hold_streams(server: ServerProcess, count: int,
                        transport: httpx.AsyncBaseTransport | None = None) -> _Held:
    """Open `count` streams on one live run and hold them all until each has received an
    event. Only that part is timed: starting the run and closing the streams are not.
    (`transport`: the client's, for a test; None: the network.)"""
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits,
                                 transport=transport) as http:
        tid, run_id = await _running_run(http, SLOW)
        path = f"/threads/{tid}/runs/{run_id}/stream"
        received: list[float] = []
        everyone = asyncio.Event()
        rss_before = server.rss_kib()
        held_rss: list[int | None] = [None]
        started = time.perf_counter()

        async def hold() -> None:
            async with http.stream("GET", path, params={"stream_mode": "values"}) as stream:
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("data:"):
                        received.append(time.perf_counter() - started)
                        break
                if len(received) == count:
                    held_rss[0] = server.rss_kib()
                    everyone.set()
                # Held open, unread, while the others catch up (see `SseStreams`): the events
                # that follow wait in the socket's buffer, a few KB at most.
                await everyone.wait()

        try:
            await asyncio.gather(*(hold() for _ in range(count)))
        finally:
            await http.post(f"{path[:-len('/stream')]}/cancel", params={"wait": 1})
        rise = None if rss_before is None or held_rss[0] is None else held_rss[0] - rss_before
        return _Held(len(received), max(received, default=0.0), rise)


@dataclass(frozen=True)
class SseStreams:
    """Concurrent event streams: N join streams held open at once on one live run (an event
    every 0.1 s), from the first request until each has received an event.

    The time per stream; the JSON's `peak_rss_delta_kib` is the server process's RSS rise
    while it holds the N streams.

    A stream is not read after its first event. The one client process that holds all N
    shares the machine with the server, and reading what follows would cost it in proportion
    to the events the server manages to send: a server that keeps the run's pace while it
    takes on streams would slow the client, and so its own row, more than one whose run
    falls behind (measured: 9.5 events a second per stream against 3.1, and 2.3 times the
    client's CPU). Unread, the events wait in each socket's buffer (tens of bytes each, ten a
    second), and the client's work is the same on both sides.
    """

    name: str = "sse_streams"
    size: int = 500
    quick_size: int = 10
    family: str = FAMILY
    mode: str = "http"
    unit: str = "stream"
    goal: float = 1.0
    doc: str = ("N SSE streams held at once on one live run until each has an event "
                "(time per stream)")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        count = self.quick_size if plan.quick else self.size
        contest = Contest(plan, [lib.name for lib in libs])
        held: dict[str, list[_Held]] = {lib.name: [] for lib in libs}
        with servers(libs, plan, contest) as running:
            for index, name in contest.turns():
                with turn(running, name) as server, contest.lap(name):
                    one = asyncio.run(within(hold_streams(server, count), plan.timeout))
                    contest.results[name] = {"streams_with_an_event": one.received}
                if index >= plan.warmup:
                    held[name].append(one)
        outcomes = contest.outcomes(per=count)
        for name, outcome in outcomes.items():
            if outcome.measurement is not None and held[name]:
                rises = [h.rss_rise_kib for h in held[name] if h.rss_rise_kib is not None]
                outcomes[name] = Outcome(Measurement(
                    [h.seconds for h in held[name]], count, outcome.measurement.result,
                    max(rises) if rises else None))
        return outcomes


WORKLOADS = [
    HttpCancel(name="http_cancel_p50", quantile=0.50, target=0.002),
    HttpCancel(name="http_cancel_p99", quantile=0.99),
    SseStreams(),
]
