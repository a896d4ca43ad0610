"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("retrieval")
def retrieval():
    """(not built yet)"""
    raise click.ClickException("not built yet")

