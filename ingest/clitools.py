"""Shared command-line plumbing: a click group whose subcommands live in their own
modules and are imported only when used (so `--help` stays fast), and the one console
every command prints through."""
from __future__ import annotations

import importlib
import sys

import click
from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


class LazyGroup(click.Group):
    """`commands_spec` maps a subcommand name to "module.path:attribute"."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, with its usage errors (unknown option, missing argument, a path
        that does not exist) in the house format: `error: ...` + `hint: ... --help`,
        exit code 2, like every other user error."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as e:
            where = e.ctx.command_path if e.ctx else (prog_name or self.name)
            err_console.print(f"[bold red]error:[/] {e.format_message()}", markup=True, highlight=False)
            err_console.print(f"[yellow]hint:[/] see `{where} --help`")
            sys.exit(e.exit_code)
        except click.exceptions.ClickException as e:
            err_console.print(f"[bold red]error:[/] {e.format_message()}")
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            err_console.print("Aborted!")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

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
