"""The `tether` command line (typer + rich): run graphs with live progress and graceful Ctrl-C,
inspect, cancel and resume recorded runs, serve graphs, and a demo. Needs the `cli` extra.

`main` is the console script: it loads the CLI, and without the `cli` extra prints one line
naming the extra to install (exit code 2) instead of a traceback."""

from __future__ import annotations


def main() -> None:
    """The `tether` console script (and `python -m tether`)."""
    from tether.cli.extras import extra_for, refuse

    try:
        from tether.cli.app import main as run
    except ImportError as exc:
        extra = extra_for(exc)
        if extra is None:
            raise
        refuse(extra)
    run()


__all__ = ["main"]
