"""`slim-eval export --model FILE --onnx OUT.onnx`: a saved classifier for deployment."""
from __future__ import annotations

import click

from slim.ingest.clitools import console, fail


@click.command("export")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="A classifier file: <run>/eval/<protocol>[_<variant>].classifier.pt.")
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the ONNX model.")
@click.option("--encoder-only", is_flag=True,
              help="Export the feature extractor (pooled features [B, F]) instead of the classifier.")
@click.option("--opset", type=int, default=17, show_default=True)
def export(model_path, onnx_path, encoder_only, opset):
    """Export a classifier (or its encoder) to ONNX with dynamic batch and person axes.

    \b
    Inputs:  x float32 [B, M, T, V, 3] (test transform applied), person_mask bool [B, M]
             (M = 2; M = 1 for one-person input halves the cost: every slot is encoded)
    Outputs: logits, probs float32 [B, C]   (--encoder-only: features float32 [B, F])
    """
    from .classifier import ClassifierError, load_classifier
    from .onnx_export import OnnxMissing, export_onnx
    try:
        model = load_classifier(model_path)
    except ClassifierError as e:
        fail(str(e), e.hint)
    try:
        path = export_onnx(model, onnx_path, encoder_only=encoder_only, opset=opset)
    except OnnxMissing as e:
        fail(f"ONNX export needs the onnx package: {e}".split(";")[0],
             "pip install 'slim-skeleton[onnx]'  (onnx and onnxruntime)")
    tf = model.transform
    console.print(f"wrote {path}", soft_wrap=True)
    console.print(f"  inputs: x float32 [batch, persons <= {tf['persons']}, {tf['out_len']}, "
                  f"{model.net.encoder.cfg.num_joints}, 3] (test_view: centre {tf['crop']:.0%}, "
                  f"{tf['out_len']} frames), person_mask bool [batch, persons]", soft_wrap=True, markup=False)
    console.print("  outputs: " + ("features [batch, F]" if encoder_only else
                                   f"logits, probs [batch, {model.num_classes}]; classes in the order "
                                   "of the classifier file's class_names"), soft_wrap=True, markup=False)
