"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("finetune")
def finetune():
    """(not built yet)"""
    raise click.ClickException("not built yet")

