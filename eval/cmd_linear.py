"""`slim-eval linear`: linear evaluation on frozen, cached features."""
from __future__ import annotations

import click

from .options import (feature_config, feature_options, open_target, run_protocol, say,
                      selection_options, show_config, target_options)


def linear_options(fn):
    for opt in reversed([
        click.option("--epochs", type=int, default=100, show_default=True),
        click.option("--batch-size", type=int, default=256, show_default=True),
        click.option("--lr", "lrs", type=float, multiple=True,
                     help="Base lr grid, x batch/256 (repeatable; default 0.03 0.1 0.3; paper 0.1)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Probe init and order."),
    ]):
        fn = opt(fn)
    return fn


def linear_config(kw: dict):
    from .linear import LinearConfig
    return LinearConfig(epochs=kw["epochs"], batch_size=kw["batch_size"],
                        lrs=tuple(kw["lrs"]) or LinearConfig.lrs, select_on=kw["select_on"],
                        val_fraction=kw["val_fraction"], val_seed=kw["val_seed"], seed=kw["seed"],
                        features=feature_config(kw))


@click.command("linear")
@linear_options
@selection_options
@target_options
@feature_options
def linear(run, encoder, data, benchmark, **kw):
    """BatchNorm (no affine) + linear classifier on frozen features (SGD, cosine)."""
    from .linear import run_linear
    from .results import print_result
    cfg = linear_config(kw)
    target = open_target(run, encoder, data, benchmark)
    show_config(cfg)
    record, path = run_protocol(run_linear, target, cfg)
    if record.get("reused"):
        say(f"[dim]reused {record.get('classifier')} (trained before with this config; "
            "delete it to train again)[/]")
    print_result(record, path)
