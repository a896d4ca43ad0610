"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("transfer")
def transfer():
    """(not built yet)"""
    raise click.ClickException("not built yet")

