"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("features")
def features():
    """(not built yet)"""
    raise click.ClickException("not built yet")

