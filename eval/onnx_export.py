"""ONNX export of a saved classifier (or of its feature extractor alone) with dynamic batch
and person axes. Inputs: `x` float32 [B, M, T, V, 3] (the classifier's test transform
already applied: T = transform out_len, V = the layout's joints; M = 2, or 1 when only one
person is ever present: every slot is encoded, so M = 1 halves the cost) and
`person_mask` bool [B, M];
outputs `logits` and `probs` float32 [B, C], or `features` float32 [B, F] with
`encoder_only`. Uses torch's TorchScript-based exporter (`dynamo=False`: no onnxscript
needed); `onnx` must be installed (the `onnx` extra)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from .classifier import SavedClassifier, StaticClassifierNet

OPSET = 17
INSTALL_HINT = "pip install 'slim-skeleton[onnx]'  (onnx and onnxruntime)"


class OnnxMissing(ImportError):
    """onnx (to export) or onnxruntime (to run) is not installed."""


def require(module: str):
    """Import `module` or raise OnnxMissing with the install hint."""
    try:
        return __import__(module)
    except ImportError as e:
        raise OnnxMissing(f"{module} is not installed ({e}); {INSTALL_HINT}") from None


def example_inputs(model: SavedClassifier, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeros x [batch, persons, out_len, V, 3] with person 1 present, for tracing."""
    tf = model.transform
    cfg = model.net.encoder.cfg
    x = torch.zeros(batch, int(tf["persons"]), int(tf["out_len"]), cfg.num_joints, cfg.in_chans)
    pm = torch.zeros(batch, int(tf["persons"]), dtype=torch.bool)
    pm[:, 0] = True
    return x, pm


def export_onnx(model: SavedClassifier, out: str | os.PathLike, *, encoder_only: bool = False,
                opset: int = OPSET) -> Path:
    """Write `out` (atomically) and check it with onnx.checker; returns the path. Raises
    OnnxMissing without onnx."""
    onnx = require("onnx")
    net = StaticClassifierNet(model.net.cpu().eval(), encoder_only=encoder_only).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + f".{os.getpid()}.tmp.onnx")
    outputs = ["features"] if encoder_only else ["logits", "probs"]
    axes = {"x": {0: "batch", 1: "persons"}, "person_mask": {0: "batch", 1: "persons"},
            **{name: {0: "batch"} for name in outputs}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant here
        torch.onnx.export(net, example_inputs(model), str(tmp), input_names=["x", "person_mask"],
                          output_names=outputs, dynamic_axes=axes, opset_version=opset, dynamo=False)
    onnx.checker.check_model(str(tmp))
    os.replace(tmp, out)
    return out


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session (intra/inter-op threads fixed when given)."""
    ort = require("onnxruntime")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
