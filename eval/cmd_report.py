"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("report")
def report():
    """(not built yet)"""
    raise click.ClickException("not built yet")

