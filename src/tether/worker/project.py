"""A LangGraph project's `langgraph.json`, read for `tether serve` and `tether worker`: the graphs
it names, its environment, and the local paths its code imports from.

Used keys: `graphs` (`{"id": "./path/file.py:attr" or "package.module:attr"}`), `env` (a
`.env` file or a dict), `dependencies` (local paths, e.g. `"."`, go on `sys.path`), `store`
(the long-term store's `index` and `ttl`, `tether.worker.store_config`). Every other key
(`python_version`, `dockerfile_lines`, `auth`...) is reported and ignored.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.graph.compiled import CompiledStateGraph
from tether.store.base import IndexConfig
from tether.worker.store_config import StoreConfig, StoreConfigError

CONFIG_FILE = "langgraph.json"
USED_KEYS = frozenset({"graphs", "env", "dependencies", "store"})


class ProjectError(ValueError):
    """A `langgraph.json` tether cannot use; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Project:
    """What tether takes from a `langgraph.json`.

    Attributes:
        file: the file (relative paths in it are relative to its directory, `root`).
        graphs: graph id → reference, in the file's order.
        env: variables to set (those already in the environment win).
        paths: local dependency directories, put on `sys.path`.
        packages: dependencies that are package names (tether installs nothing).
        ignored: keys of the file tether does not use.
        store: the long-term store's settings (`store`).
    """

    file: Path
    graphs: dict[str, str]
    env: dict[str, str]
    paths: tuple[Path, ...]
    packages: tuple[str, ...]
    ignored: tuple[str, ...]
    store: StoreConfig = field(default_factory=StoreConfig)

    @property
    def root(self) -> Path:
        """The directory of the file."""
        return self.file.parent

    @classmethod
    def read(cls, file: str | os.PathLike[str]) -> Project:
        """Read a `langgraph.json`.

        Raises:
            ProjectError: the file is missing, is not JSON, or a used key is malformed.
        """
        path = Path(file).resolve()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProjectError(f"cannot read {file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ProjectError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise ProjectError(f"{file}: expected a JSON object")
        graphs = _graphs(data.get("graphs"), file)
        paths, packages = _dependencies(data.get("dependencies", []), path.parent, file)
        try:
            store = StoreConfig.parse(data.get("store"), str(file))
        except StoreConfigError as exc:
            raise ProjectError(str(exc)) from None
        return cls(file=path, graphs=graphs, env=_env(data.get("env", {}), path.parent, file),
                   paths=paths, packages=packages,
                   ignored=tuple(sorted(set(data) - USED_KEYS)), store=store)

    def notices(self) -> list[str]:
        """One line per thing of the file tether leaves alone."""
        lines = []
        if self.ignored:
            lines.append(f"{self.file.name}: tether ignores {', '.join(self.ignored)}")
        if self.packages:
            lines.append(f"{self.file.name}: dependencies {', '.join(self.packages)} are not "
                         "installed by tether (install them in this environment)")
        return lines

    def load_all(self) -> dict[str, CompiledStateGraph]:
        """Every graph of the project, by graph id (after `activate`).

        Raises:
            ProjectError: as `load`.
        """
        return {graph_id: self.load(graph_id) for graph_id in self.graphs}

    def activate(self) -> None:
        """Set the environment (existing variables win) and put the local dependencies on
        `sys.path`, so the graphs import as they do under LangGraph."""
        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        for directory in reversed(self.paths):
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))

    def load(self, graph_id: str) -> CompiledStateGraph:
        """Import one graph: a compiled graph, a `StateGraph` (compiled here), or a function
        that returns either (called once, with a `config` argument if it takes one).

        Raises:
            ProjectError: the reference does not import, or does not give a tether graph.
        """
        ref = self.graphs[graph_id]
        what = f"graph {graph_id!r} ({ref})"
        return _as_graph(self._attribute(ref, what), f"{self.file}: {what}")

    def store_index(self) -> IndexConfig | None:
        """The long-term store's `index` settings, its `embed` imported (after `activate`).

        Raises:
            ProjectError: `store.index.embed` cannot be loaded.
        """
        try:
            return self.store.resolve(
                lambda ref: self._attribute(ref, f"store.index.embed ({ref})"))
        except StoreConfigError as exc:
            raise ProjectError(str(exc)) from None

    def _attribute(self, ref: str, what: str) -> Any:
        """Import `path/file.py:attr` (or `module:attr`) of the project; the attribute.

        Raises:
            ProjectError: the module does not import, or lacks the attribute.
        """
        where, _, attr = ref.rpartition(":")
        try:
            target: Any = self._module(where)
        except (ImportError, OSError, SyntaxError) as exc:
            raise ProjectError(f"{self.file}: {what}: cannot import {where!r}: "
                               f"{type(exc).__name__}: {exc}") from exc
        for part in attr.split("."):
            if not hasattr(target, part):
                raise ProjectError(f"{self.file}: {what}: {where!r} has no attribute {attr!r}")
            target = getattr(target, part)
        return target

    def _module(self, where: str) -> Any:
        if not (where.endswith(".py") or "/" in where or os.sep in where):
            return importlib.import_module(where)
        path = (self.root / where).resolve()
        # One module per file: named after it, and unique across projects.
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        stem = re.sub(r"\W", "_", path.stem)
        name = f"_tether_project_{stem}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"no Python file at {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


def find(directory: str | os.PathLike[str] = ".") -> Path | None:
    """The `langgraph.json` in `directory`, if there is one."""
    candidate = Path(directory) / CONFIG_FILE
    return candidate if candidate.is_file() else None


def _as_graph(target: Any, where: str) -> CompiledStateGraph:
    if inspect.isfunction(target) or inspect.ismethod(target):
        takes_config = bool(inspect.signature(target).parameters)
        target = target({}) if takes_config else target()
        if inspect.isawaitable(target):
            raise ProjectError(f"{where}: an async graph factory is not supported; "
                               "export the graph, or a sync function that returns it")
    if not isinstance(target, CompiledStateGraph) and hasattr(target, "compile"):
        target = target.compile()
    if not isinstance(target, CompiledStateGraph):
        raise ProjectError(f"{where}: is a {type(target).__name__}, not a tether graph "
                           "(import StateGraph from tether.graph in the project's code)")
    return target


def _graphs(graphs: Any, file: str | os.PathLike[str]) -> dict[str, str]:
    if not isinstance(graphs, Mapping) or not graphs:
        raise ProjectError(f"{file}: 'graphs' must map graph ids to 'path/file.py:attr' or "
                           "'module:attr'")
    found: dict[str, str] = {}
    for graph_id, given in graphs.items():
        # LangGraph also accepts {"path": ..., "description": ...}
        ref = given.get("path") if isinstance(given, Mapping) else given
        if not isinstance(ref, str) or ":" not in ref or ref.endswith(":"):
            raise ProjectError(f"{file}: graph {graph_id!r}: {ref!r} is not "
                               "'path/file.py:attr' or 'module:attr'")
        found[str(graph_id)] = ref
    return found


def _dependencies(deps: Any, root: Path, file: str | os.PathLike[str]
                  ) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ProjectError(f"{file}: 'dependencies' must be a list of strings")
    local = tuple((root / d).resolve() for d in deps if d.startswith((".", "/")))
    return local, tuple(d for d in deps if not d.startswith((".", "/")))


def _env(env: Any, root: Path, file: str | os.PathLike[str]) -> dict[str, str]:
    if isinstance(env, Mapping):
        return {str(k): str(v) for k, v in env.items()}
    if not isinstance(env, str):
        raise ProjectError(f"{file}: 'env' must be a path to a .env file or an object")
    try:
        text = (root / env).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"{file}: 'env' file {env!r}: {exc.strerror}") from None
    return dotenv(text)


def dotenv(text: str) -> dict[str, str]:
    """The variables of a `.env` file: `KEY=value` lines, `export ` allowed, quotes removed,
    `#` comments and blank lines skipped."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[key.strip()] = value
    return found


__all__ = ["CONFIG_FILE", "Project", "ProjectError", "dotenv", "find"]
