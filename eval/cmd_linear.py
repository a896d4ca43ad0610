"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("linear")
def linear():
    """(not built yet)"""
    raise click.ClickException("not built yet")

