"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("verify")
def verify():
    """(not built yet)"""
    raise click.ClickException("not built yet")

