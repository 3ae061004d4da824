"""Run with tether installed without extras (`pip install .`): every public module that needs
no extra imports, and the `tether` console script says in one line which extra to install.

CI runs it in a fresh venv; `tests/unit/test_optional_extras.py` runs it here with the extras'
modules blocked. Exit 0 when all holds; otherwise the problems, one per line, and exit 1.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
import sys

NEEDS_EXTRA = {
    "tether.cli.": "cli",
    "tether.server": "server",
    "tether.worker.": "postgres",
    "tether.checkpoint.postgres": "postgres",
    "tether.store.postgres": "postgres",
    "tether.bus.postgres": "postgres",
    "tether.bus.redis": "redis",
    "tether.prebuilt": "agents",
    "tether.graph.chat_stream": "agents",
    "tether.graph.tracing": "agents",
}
"""Module prefixes that may need an extra (they must then fail only on that extra's imports)."""

LOADED_BY = {"tether.testing.pytest_plugin": "pytest"}
"""Modules only a tool imports (a pytest plugin): they may fail only for want of that tool."""

CORE = ("tether", "tether.graph", "tether.types", "tether.errors", "tether.config",
        "tether.runtime", "tether.checkpoint.memory", "tether.checkpoint.sqlite",
        "tether.runs", "tether.engine.loop", "tether.cli", "tether.worker", "tether.bus",
        "tether.bus.memory")
"""Modules a user without extras imports, which must be found among those that import."""


def problems() -> list[str]:
    """Everything that does not hold, as sentences."""
    import tether
    from tether.cli.extras import PROVIDERS, extra_for

    found: list[str] = []
    imported: set[str] = set()
    for module in pkgutil.walk_packages(tether.__path__, "tether."):
        name = module.name
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if name in LOADED_BY and exc.name == LOADED_BY[name]:
                continue
            extra = next((e for p, e in NEEDS_EXTRA.items() if name.startswith(p)), None)
            if extra is None or extra_for(exc) is None:
                found.append(f"{name} fails to import without extras: {exc!r}")
            elif (exc.name or "").partition(".")[0] not in PROVIDERS[extra_for(exc) or ""]:
                found.append(f"{name}: unexpected import error {exc!r}")
            continue
        imported.add(name)
    found += [f"{name} did not import" for name in ("tether", *CORE) if name not in imported
              and name != "tether"]
    found += _cli_problems()
    return found


def _cli_problems() -> list[str]:
    from tether.cli import main

    err = io.StringIO()
    old_argv = sys.argv
    sys.argv = ["tether", "--help"]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    finally:
        sys.argv = old_argv
    text = err.getvalue()
    if code != 2 or text.strip() != ("error: the tether command line needs the cli extra: "
                                     "pip install 'tether[cli]'"):
        return [f"`tether --help` without the cli extra: exit {code}, stderr {text!r}"]
    return []


if __name__ == "__main__":
    issues = problems()
    for line in issues:
        print(line)
    print("no-extras check:", "FAILED" if issues else "ok")
    sys.exit(1 if issues else 0)
