"""`python -m bench`: the command line of the benchmark suite."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from bench.harness import run, write_json
from bench.registry import discover, select
from bench.timing import Plan
from bench.workload import row_id


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time each workload on tether and on LangGraph; compare per superstep.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and 1 repeat: proves the benchmarks run, times mean little",
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        action="append",
        default=[],
        help="families, workloads, name:mode or globs (see --list); repeat or comma-separate "
        "to select several",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="timed repeats per workload; the median is reported (default 5)",
    )
    parser.add_argument(
        "--warmup", type=int, metavar="N", help="untimed runs before the timed ones (default 1)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop a library's run (one invoke) after this long; it becomes an error "
        "(default 120, 10 with --quick; 0: never)",
    )
    parser.add_argument(
        "--sqlite-sync",
        choices=["normal", "full"],
        help="SQLite's PRAGMA synchronous for both libraries (default: each library's own; "
        "LangGraph's sqlite3 connection has FULL, an fsync per commit; tether has NORMAL)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser


_LIST_COMMA = re.compile(r",(?![^\[]*\])")
"""A comma between two `--only` filters, not one inside a row's brackets
(`chunk-delay[100x10/s,redis]`)."""


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 1 if any row has an error (slowness is not one), 2 for bad arguments."""
    args = _parser().parse_args(argv)
    try:
        workloads = select(discover(), [p.strip() for only in args.only
                                         for p in _LIST_COMMA.split(only) if p.strip()])
    except LookupError as exc:
        print(f"python -m bench: {exc} (see --list)", file=sys.stderr)
        return 2
    if args.list:
        for workload in workloads:
            summary = workload.doc.strip().splitlines()[0] if workload.doc.strip() else ""
            print(f"{workload.family:12} {row_id(workload):28} {summary}")
        return 0
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 1
    timeout = args.timeout if args.timeout is not None else (10.0 if args.quick else 120.0)
    if repeat < 1 or warmup < 0:
        print("python -m bench: --repeat must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmpdir:
        plan = Plan(repeat, warmup, args.quick, Path(tmpdir), timeout, args.sqlite_sync)
        report = run(workloads, plan)
    if args.json:
        write_json(args.json, report, sys.argv[1:] if argv is None else argv)
    code = 1 if report.failed else 0
    if report.timed_out:
        # A library's threads may still be running the abandoned workload; do not wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
