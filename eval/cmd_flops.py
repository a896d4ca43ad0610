"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("flops")
def flops():
    """(not built yet)"""
    raise click.ClickException("not built yet")

