"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("show")
def show():
    """(not built yet)"""
    raise click.ClickException("not built yet")

