"""PLACEHOLDER: replaced by the issue that owns this command."""
import click


@click.command("ntu60")
def ntu60():
    """(not built yet)"""
    raise click.ClickException("not built yet")


@click.command("ntu120")
def ntu120():
    """(not built yet)"""
    raise click.ClickException("not built yet")


@click.command("pku2")
def pku2():
    """(not built yet)"""
    raise click.ClickException("not built yet")


@click.command("synthetic")
def synthetic():
    """(not built yet)"""
    raise click.ClickException("not built yet")

