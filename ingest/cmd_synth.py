"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("synth")
def synth():
    """(not built yet)"""
    raise click.ClickException("not built yet")

