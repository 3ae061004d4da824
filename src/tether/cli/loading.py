"""What the commands load from their arguments: a graph from `module:attr`, a SQLite store,
JSON input. Every failure here is a usage error (exit code 2) that names the argument."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from tether.checkpoint.sqlite import SqliteSaver
from tether.cli.exits import ExitCode
from tether.errors import CorruptStoreError, SchemaVersionError
from tether.graph.compiled import CompiledStateGraph
from tether.store.base import BaseStore

DEFAULT_DB = "tether.db"
DB_ENV = "TETHER_DB"


def _usage(message: str, option: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=option)


def load_graph(ref: str, option: str = "'MODULE:GRAPH'") -> CompiledStateGraph:
    """Import `module:attr` (the current directory is on the path) and return the graph.

    A `StateGraph` builder is accepted too and compiled without a checkpointer.

    Raises:
        typer.BadParameter: the reference is malformed, the module cannot be imported, or the
            attribute is missing or not a graph.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise _usage(f"{ref!r} is not of the form module:attribute (e.g. app.graphs:graph)",
                     option)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:  # Ctrl-C while a slow module imports: no run exists yet
        raise typer.Exit(ExitCode.FORCED) from None
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise _usage(f"no module named {module_name!r} (looked in the current directory "
                         f"and on sys.path)", option) from exc
        raise _usage(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                     option) from exc
    except Exception as exc:
        raise _usage(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                     option) from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise _usage(f"module {module_name!r} has no attribute {attr!r}", option)
        target = getattr(target, part)
    return _as_compiled(target, ref, option)


def _as_compiled(target: Any, ref: str, option: str) -> CompiledStateGraph:
    if isinstance(target, CompiledStateGraph):
        return target
    compile_ = getattr(target, "compile", None)
    if callable(compile_) and hasattr(target, "nodes"):
        compiled = compile_()
        if isinstance(compiled, CompiledStateGraph):
            return compiled
    raise _usage(f"{ref!r} is a {type(target).__name__}, not a tether graph "
                 "(a StateGraph or what its compile() returns)", option)


def resolve_db(db: str | None) -> str:
    """The database path: `--db`, else `$TETHER_DB`, else `tether.db`."""
    return db or os.environ.get(DB_ENV) or DEFAULT_DB


def open_store(db: str, *, must_exist: bool) -> SqliteSaver:
    """Open the SQLite store at `db`.

    Raises:
        typer.BadParameter: `must_exist` and there is no such file, or its directory is missing.
    """
    path = Path(db)
    if must_exist and db != ":memory:" and not path.is_file():
        raise _usage(f"no database at {db} (runs are recorded where `tether run --db` put "
                     f"them; default {DEFAULT_DB} or ${DB_ENV})", "'--db'")
    if db != ":memory:" and not path.parent.is_dir():
        raise _usage(f"the directory of {db} does not exist", "'--db'")
    try:
        return SqliteSaver(db)
    except (CorruptStoreError, SchemaVersionError) as exc:
        print(f"error: --db {exc}", file=sys.stderr)
        raise typer.Exit(ExitCode.USAGE) from None


def attach_store(graph: CompiledStateGraph, store: SqliteSaver,
                 long_term_store: BaseStore | None = None) -> CompiledStateGraph:
    """`graph` recompiled with `store` as its checkpointer, unless it already has one, and
    with `long_term_store` as its long-term store, unless it already has one."""
    checkpointer = graph.checkpointer or store
    if checkpointer is graph.checkpointer and (graph.store is not None
                                               or long_term_store is None):
        return graph
    return graph.rebind(checkpointer, default_store=long_term_store)


def parse_json(text: str, option: str) -> Any:
    """Parse a JSON argument; `@path` reads the JSON from a file.

    Raises:
        typer.BadParameter: not valid JSON, or the file cannot be read.
    """
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise _usage(f"cannot read {text[1:]}: {exc.strerror}", option) from exc
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise _usage(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
                     f"{_clip(source)}", option) from exc


def _clip(text: str, width: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = ["DB_ENV", "DEFAULT_DB", "attach_store", "load_graph", "open_store", "parse_json",
           "resolve_db"]
