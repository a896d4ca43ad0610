"""`slim-eval`: every downstream protocol on a run's (teacher) encoder."""
from __future__ import annotations

import click

from slim.ingest.clitools import LazyGroup

LAZY = {
    "retrieval": "slim.eval.cmd_retrieval:retrieval",
    "linear": "slim.eval.cmd_linear:linear",
    "semi": "slim.eval.cmd_semi:semi",
    "finetune": "slim.eval.cmd_finetune:finetune",
    "transfer": "slim.eval.cmd_transfer:transfer",
    "features": "slim.eval.cmd_features:features",
    "flops": "slim.eval.cmd_flops:flops",
    "report": "slim.eval.cmd_report:report",
    "demo": "slim.eval.cmd_demo:demo",
    "predict": "slim.eval.cmd_predict:predict",
    "export": "slim.eval.cmd_export:export",
}


@click.group(cls=LazyGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slim-skeleton")
def main():
    """Evaluate a pretrained encoder with the downstream protocols of the paper and more.

    \b
    Typical use:
      slim-eval retrieval --k 1                  # latest run under runs/, its dataset
      slim-eval linear --run runs/demo --data data/synthetic
      slim-eval semi --ratio 0.01 --seeds 3 --run runs/ntu60
      slim-eval retrieval --k 1 --run runs/demo --encoder random:0   # the baseline
      slim-eval flops                            # GFLOPs of ours vs the MAMP encoder
      slim-eval report runs/a runs/b             # one table, with the paper's numbers
      slim-eval predict --model runs/demo/eval/linear.classifier.pt recordings/ --out preds.csv
      slim-eval export --model runs/demo/eval/linear.classifier.pt --onnx linear.onnx
    """


if __name__ == "__main__":  # pragma: no cover
    main()
