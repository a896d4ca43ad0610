"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("semi")
def semi():
    """(not built yet)"""
    raise click.ClickException("not built yet")

