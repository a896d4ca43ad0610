"""`slim-train`: self-supervised pretraining and encoder export."""
from __future__ import annotations

import click

from slim.ingest.clitools import LazyGroup

LAZY = {
    "pretrain": "slim.train.cmd_pretrain:pretrain",
    "export": "slim.train.cmd_export:export",
    "plot": "slim.train.cmd_plot:plot",
}


@click.group(cls=LazyGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slim-skeleton")
def main():
    """Pretrain SLiM on one CPU, one GPU, or many with torchrun, and export encoders.

    \b
    Typical use:
      slim-train pretrain                                   # dataset under data/, new run under runs/
      slim-train pretrain --data data/ntu60 --benchmark xsub --preset paper --out runs/ntu60
      torchrun --nproc_per_node 4 -m slim.train.cli pretrain --data data/ntu60 --out runs/ntu60
      slim-train export runs/ntu60                          # teacher encoder -> runs/ntu60/encoder.pt
      slim-train plot runs/ntu60 --out curves.png           # training curves from metrics.jsonl
    """


if __name__ == "__main__":  # pragma: no cover
    main()
