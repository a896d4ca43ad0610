"""`slim-eval semi`: semi-supervised fine-tuning on the manifest's 1 % / 10 % subset."""
from __future__ import annotations

import click

from .cmd_tune_options import tune_config, tune_options
from .finetune import FinetuneConfig
from .options import open_target, run_protocol, selection_options, show_config, target_options


@click.command("semi")
@click.option("--ratio", type=click.Choice(["0.01", "0.1"]), required=True,
              help="Labelled share: the manifest column <benchmark>_train_1pct or _10pct.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Training seeds (mean and std).")
@tune_options(FinetuneConfig.semi())
@selection_options
@target_options
def semi(ratio, seeds, run, encoder, data, benchmark, **kw):
    """Fine-tune encoder + linear head on a fixed class-balanced subset; mean +- std over seeds.

    
    Step rule: training takes at least --min-steps optimiser steps (default 700, the
    paper's smallest setting: NTU-60 X-Sub 1 %, 400 samples at batch 64 for 100 epochs);
    on a smaller subset each epoch repeats the subset, shuffled anew, as often as needed.
    """
    from .results import print_result
    from .tune import SemiConfig, run_semi
    cfg = SemiConfig(ratio=float(ratio), seeds=seeds, train=tune_config(FinetuneConfig.semi(), kw))
    target = open_target(run, encoder, data, benchmark)
    show_config(cfg)
    record, path = run_protocol(run_semi, target, cfg)
    print_result(record, path)
