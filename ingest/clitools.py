"""Shared command-line plumbing: a click group whose subcommands live in their own
modules and are imported only when used (so `--help` stays fast), and the one console
every command prints through."""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

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

    def invoke(self, ctx):
        """Run the subcommand with SIGTERM turned into an interruption like Ctrl-C; an
        interruption that reaches here (a command with no handling of its own) ends with
        a sentence saying what is kept and exit code 128 + the signal (130, 143), never
        click's bare `Aborted!`. Commands that stop gracefully themselves (pretrain,
        ingest) install their own handlers inside, which take precedence."""
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            err_console.print(f"[bold yellow]interrupted by {name}[/]; finished work is kept (cached "
                              "features, result files, parsed chunks, checkpoints); run the same command "
                              "to resume")
            raise click.exceptions.Exit(128 + int(signal.Signals[name])) from None
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so the same cleanup runs."""


def _raise_terminated(signum, frame):
    raise Terminated()


def fail(message: str, hint: str | None = None, code: int = 2) -> "click.exceptions.Exit":
    """Print a readable error (and what to do about it) and exit non-zero. The texts are
    printed as they are (not read as rich markup: a library's message such as gloo's
    "[/path/pair.cc:152] ..." would otherwise raise MarkupError)."""
    from rich.markup import escape
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err_console.print(f"[yellow]hint:[/] {escape(hint)}")
    raise click.exceptions.Exit(code)
