"""`slim-eval predict --model FILE INPUT...`: a saved classifier on new recordings."""
from __future__ import annotations

import click

from slim.ingest.clitools import console, err_console, fail


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="A classifier file: <run>/eval/<protocol>[_<variant>].classifier.pt.")
@click.option("--split", default=None,
              help="With an ingested data folder: a manifest column, e.g. xsub_test (default: every sample).")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto (a GPU when there is one), cpu, cuda, cuda:N.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write every row to FILE.csv, FILE.jsonl or FILE.parquet.")
@click.option("--confusion", type=click.Path(dir_okay=False), default=None,
              help="Draw the confusion matrix of labelled inputs to FILE.png (matplotlib extra).")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Long recordings: classify sliding windows of W frames and merge them into segments.")
@click.option("--stride", type=click.IntRange(min=1), default=None, help="Frames between windows (default W/2).")
@click.option("--min-segment", type=click.IntRange(min=1), default=None,
              help="Shortest merged segment in frames (default W/2).")
@click.option("--min-score", type=float, default=0.0, show_default=True,
              help="Drop merged segments whose mean probability is lower.")
@click.option("--segments", "segments_dir", type=click.Path(file_okay=False), default=None,
              help="With --window: write <DIR>/<video>.txt per recording in the PKU-MMD label format.")
def predict(inputs, model_path, split, top_k, batch_size, device, out, confusion, window, stride,
            min_segment, min_score, segments_dir):
    """Classify raw NTU `.skeleton` files, PKU-MMD skeleton files, folders of them, or an
    ingested data folder with a saved classifier.

    \b
    Examples:
      slim-eval predict --model runs/demo/eval/linear.classifier.pt recordings/ --out preds.csv
      slim-eval predict --model runs/demo/eval/linear.classifier.pt data/synthetic --split xsub_test
      slim-eval predict --model M.classifier.pt A10N08-L.txt --window 60 --stride 15 --segments seg/
    """
    from .classifier import ClassifierError, load_classifier
    from .predict import PredictConfig, predict as run_predict
    from .predict_inputs import PredictInputError, discover
    from .predict_output import (OUT_SUFFIXES, confusion_table, draw_confusion, rows_table,
                                 segments_table, write_rows)
    from .segments import write_pku_labels

    if out and not out.lower().endswith(OUT_SUFFIXES):
        fail(f"--out {out}: unknown format", f"name the file with one of {', '.join(OUT_SUFFIXES)}")
    if (stride or min_segment or segments_dir) and not window:
        fail("--stride, --min-segment and --segments only apply to long recordings",
             "add --window W (frames per window)")
    if confusion:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--confusion needs matplotlib", "pip install 'slim-skeleton[plot]'")
    try:
        model = load_classifier(model_path)
    except ClassifierError as e:
        fail(str(e), e.hint)
    if window is not None and window < model.min_frames:
        fail(f"--window {window} is shorter than {model_path} can take ({model.min_frames} frames)",
             f"use --window {model.min_frames} or more")
    console.print(f"[dim]model: {model_path}[/]", soft_wrap=True)
    console.print(f"[dim]  {model.protocol}{' ' + model.variant if model.variant else ''} on "
                  f"{model.dataset} {model.benchmark}, {model.num_classes} classes, layout {model.layout}, "
                  f"encoder {model.encoder_source} ({model.encoder_sha256[:12]})[/]", soft_wrap=True)
    cfg = PredictConfig(top_k=top_k, batch_size=batch_size, device=device, split=split, window=window,
                        stride=stride, min_segment=min_segment, min_score=min_score)
    found = discover(list(inputs))
    try:
        pred = run_predict(model, found, cfg)
    except PredictInputError as e:
        fail(str(e), e.hint)
    for s in pred.skipped:
        err_console.print(f"[yellow]skipped[/] {s.source}: {s.reason}", soft_wrap=True)
    if len(pred) == 0:
        fail(f"nothing to predict: {len(pred.skipped)} input(s) skipped (reasons above)",
             "pass NTU .skeleton files, PKU-MMD AxxNyy-V.txt files, folders of them or an ingested folder")
    console.print(rows_table(pred, top_k))
    if len(pred) > 40:
        console.print(f"[dim]... {len(pred) - 40} more rows{'' if out else ' (--out FILE.csv writes all)'}[/]")
    acc = pred.accuracy()
    if acc is not None:
        console.print(f"top-1 accuracy: {acc:.2f} % on {pred.labelled().size} labelled of {len(pred)} sequences")
        table = confusion_table(pred)
        if table is not None:
            console.print(table)
    if window:
        console.print(segments_table(pred))
        if segments_dir:
            for video, segs in pred.segments.items():
                p = write_pku_labels(segments_dir, video, segs)
                console.print(f"segments written to {p}", soft_wrap=True)
    if out:
        try:
            p = write_rows(out, pred, top_k)
        except (ValueError, OSError) as e:
            fail(str(e), "choose another --out path")
        console.print(f"predictions written to {p}", soft_wrap=True)
    if confusion:
        try:
            p = draw_confusion(confusion, pred)
        except ValueError as e:
            fail(str(e), "--confusion needs inputs with labels (an ingested folder, or NTU-named files)")
        console.print(f"confusion matrix drawn to {p}", soft_wrap=True)
    console.print(f"predicted {len(pred)} sequences, skipped {len(pred.skipped)}")
