"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("info")
def info():
    """(not built yet)"""
    raise click.ClickException("not built yet")

