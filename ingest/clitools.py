"""Shared command-line plumbing: a click group whose subcommands live in their own
modules and are imported only when used (so `--help` stays fast), and the one console
every command prints through."""
from __future__ import annotations

import importlib
import os
import sys

import click
from rich.console import Console

#: Width of output that goes to a file or a pipe (rich would use 80 columns): wide enough
#: for the result tables, so that logs stay readable. $COLUMNS still wins when set.
PIPE_WIDTH = 160


def _width(stream) -> int | None:
    """None (rich measures the terminal) on a terminal or with $COLUMNS, else PIPE_WIDTH."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH


console = Console(stderr=False, highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


class LazyGroup(click.Group):
    """`commands_spec` maps a subcommand name to "module.path:attribute"."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def get_command(self, ctx, name):
        if name in self._lazy:
            mod, attr = self._lazy[name].split(":")
            return getattr(importlib.import_module(mod), attr)
        return super().get_command(ctx, name)


def fail(message: str, hint: str | None = None, code: int = 2) -> "click.exceptions.Exit":
    """Print a readable error (and what to do about it) and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}")
    if hint:
        err_console.print(f"[yellow]hint:[/] {hint}")
    raise click.exceptions.Exit(code)
