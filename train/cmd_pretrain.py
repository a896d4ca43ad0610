"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("pretrain")
def pretrain():
    """(not built yet)"""
    raise click.ClickException("not built yet")

