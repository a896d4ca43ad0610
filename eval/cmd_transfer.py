"""`slim-eval transfer`: a source run's encoder, linear evaluation on another dataset."""
from __future__ import annotations

import click

from .cmd_linear import linear_config, linear_options
from .options import feature_options, open_target, run_protocol, selection_options, show_config


@click.command("transfer")
@click.option("--source", "--run", "source", type=click.Path(file_okay=False), default=None,
              help="The pretraining run whose encoder is transferred (e.g. runs/ntu60; default: the "
                   "latest under runs/). --run is the same option, as in the other protocols.")
@click.option("--target", "target_dir", type=click.Path(file_okay=False), required=True,
              help="The ingested target dataset (e.g. data/pku2).")
@click.option("--benchmark", default=None, help="Benchmark of the target (default: its first).")
@click.option("--encoder", default=None, metavar="FILE|random[:SEED]",
              help="An encoder file instead of the run's (results go beside it), or `random:SEED` "
                   "for the baseline of the source's architecture.")
@linear_options
@selection_options
@feature_options
def transfer(source, target_dir, benchmark, encoder, **kw):
    """Linear evaluation of a source run's encoder (or an encoder file) on another dataset
    (NTU -> PKU-MMD II).

    \b
      slim-eval transfer --source runs/ntu60 --target data/pku2
      slim-eval transfer --encoder runs/ntu60/encoder.pt --target data/pku2
    """
    from .results import print_result
    from .transfer import run_transfer
    cfg = linear_config(kw)
    target = open_target(source, encoder, target_dir, benchmark,
                         names={"--run": "--source", "--data": "--target"})
    show_config(cfg)
    record, path = run_protocol(run_transfer, target, cfg)
    print_result(record, path)
