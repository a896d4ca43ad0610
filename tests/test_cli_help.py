"""Every command of the three CLIs describes itself and every option it has (issue 18,
item 24): `--help` is where a new user learns what an option counts or switches."""
import click
import pytest

from slim.eval.cli import main as eval_cli
from slim.ingest.cli import main as ingest_cli
from slim.train.cli import main as train_cli

GROUPS = {"slim-ingest": ingest_cli, "slim-train": train_cli, "slim-eval": eval_cli}


def _commands():
    for name, grp in GROUPS.items():
        ctx = click.Context(grp)
        for sub in grp.list_commands(ctx):
            yield f"{name} {sub}", grp.get_command(ctx, sub)


@pytest.mark.parametrize("name, cmd", list(_commands()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_and_option_is_described(name, cmd):
    assert (cmd.help or "").strip(), f"{name} has no description"
    bare = [p.opts[0] for p in cmd.params if isinstance(p, click.Option) and not p.hidden
            and not (p.help or "").strip()]
    assert not bare, f"{name}: options without a description: {bare}"
