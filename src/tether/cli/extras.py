"""Which optional extra provides which import, and the one-line hint when one is missing.

Nothing here imports typer or rich: the console script uses it before the CLI itself loads.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

USAGE_EXIT = 2
"""The exit code of a command that cannot run as installed (the CLI's usage code)."""

PROVIDERS: dict[str, frozenset[str]] = {
    "cli": frozenset({"typer", "rich", "click", "shellingham"}),
    "server": frozenset({"fastapi", "uvicorn", "starlette", "pydantic", "pydantic_core",
                         "sse_starlette", "anyio._backends"}),
    "postgres": frozenset({"psycopg", "psycopg_pool", "psycopg_binary"}),
    "redis": frozenset({"redis"}),
    "agents": frozenset({"langchain_core"}),
}
"""The top-level modules each extra installs (what a failed import can be traced back to)."""


def extra_for(exc: ImportError) -> str | None:
    """The extra that would have provided the module `exc` failed to import, if any."""
    top = (exc.name or "").partition(".")[0]
    for extra, modules in PROVIDERS.items():
        if top in modules:
            return extra
    return None


def hint(extra: str, command: str | None = None) -> str:
    """`error: tether serve needs the server extra: pip install 'tether[server]'`."""
    what = f"`tether {command}`" if command else "the tether command line"
    return f"error: {what} needs the {extra} extra: pip install 'tether[{extra}]'"


def refuse(extra: str, command: str | None = None) -> NoReturn:
    """Print the hint for `extra` on stderr (plain text: no markup can eat the brackets) and
    exit with the usage code."""
    print(hint(extra, command), file=sys.stderr)
    raise SystemExit(USAGE_EXIT)


def require(extra: str, command: str, *modules: str) -> None:
    """Import `modules` (default: every module the extra provides that a command needs), or
    refuse with the hint naming `extra`.

    Raises:
        SystemExit: exit code 2 when an import fails for a module the extra provides.
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if extra_for(exc) is None and not name.startswith("tether."):
                raise
            refuse(extra_for(exc) or extra, command)


def needing(extra: str, command: str, *modules: str
            ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator for a command that needs `extra`: it imports `modules` first (see
    `require`). The command's signature is kept, so typer still sees its options."""
    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            require(extra, command, *modules)
            return fn(*args, **kwargs)
        return checked
    return decorate


__all__ = ["PROVIDERS", "USAGE_EXIT", "extra_for", "hint", "needing", "refuse", "require"]
