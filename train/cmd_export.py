"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("export")
def export():
    """(not built yet)"""
    raise click.ClickException("not built yet")

