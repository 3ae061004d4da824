"""`--help` without typer's type tags: an option shows its metavar (`--db PATH`), a flag and
an argument show nothing beside their names, never `<str>` or `<bool>`."""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


def _plain(param: Any) -> None:
    label: str | None = None
    # typer may bring its own copy of click: ask the parameter what it is, not its class.
    if param.param_type_name == "option" and not getattr(param, "is_flag", False):
        label = param.metavar or (param.name or "value").upper()
    # The help table asks each parameter for its type label; answer with the plain one.
    param.display_type_rich = lambda ctx, label=label: label


class PlainCommand(TyperCommand):
    """A typer command whose help shows plain metavars."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            _plain(param)
        return params


class PlainGroup(TyperGroup):
    """A typer group (the `tether` app, `tether runs`) whose help shows plain metavars."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            _plain(param)
        return params


__all__ = ["PlainCommand", "PlainGroup"]
