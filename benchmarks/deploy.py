"""Deployment latency of a saved classifier: one sequence (batch 1, test transform already
applied: [1, 2, 64, 25, 3]), 1 thread, on the CPU, in PyTorch (`ClassifierNet`, absent
persons skipped) and in onnxruntime (the `slim-eval export` graph, which encodes every
person slot it is given: one person is fed as x [1, 1, ...]). Encoder of the `cpu-demo` preset (3 x 96, 4 heads) by default,
`--paper` for the paper's (8 x 256, 8 heads); a 60-class linear-probe head. Medians over
`--repeats` interleaved calls after warm-up, one person present and two.
`python -m benchmarks.deploy [--paper] [--repeats N]`; needs the onnx extra."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import record


def _median_ms(fns: dict, repeats: int, warmup: int = 10) -> dict:
    """Median ms per call of each fn; calls are interleaved (fn a, fn b, fn a, ...) so that
    a load change on a shared machine hits both alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: 1000.0 * statistics.median(v) for k, v in times.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--paper", action="store_true", help="the paper's encoder instead of cpu-demo's")
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)
    from slim.eval.classifier import load_classifier, make_head, save_classifier
    from slim.eval.onnx_export import export_onnx, onnx_session
    from slim.ingest import ntu_names
    from slim.model.encoder import Encoder, EncoderConfig

    torch.set_num_threads(1)
    cfg = EncoderConfig() if args.paper else EncoderConfig(depth=3, dim=96, heads=4)
    names = ntu_names.class_names("ntu60")
    g = torch.Generator().manual_seed(0)
    enc = Encoder(cfg, generator=g)
    head = make_head("bn_linear", 2 * cfg.dim, len(names))
    figures = {"encoder": "paper" if args.paper else "cpu-demo", "threads": 1, "batch": 1}
    with tempfile.TemporaryDirectory() as tmp:
        path = save_classifier(Path(tmp) / "bench.classifier.pt", encoder=enc, head=head.eval(),
                               head_kind="bn_linear", pool="cls+mean", protocol="linear", variant="",
                               dataset="ntu60", benchmark="xsub",
                               meta={"class_names": names, "layout": "kinect-v2-25"},
                               record={}, config_key="bench")
        model = load_classifier(path)
        onnx_path = export_onnx(model, Path(tmp) / "bench.onnx")
        sess = onnx_session(onnx_path, threads=1)
        net = model.net.eval()
        x = torch.randn(1, 2, 64, 25, 3, generator=g) * 0.3
        for persons in (1, 2):
            pm = torch.tensor([[True, persons == 2]])
            xp = x.clone()
            xp[:, persons:] = 0
            # onnxruntime encodes every slot it is given: one person is fed as M = 1.
            feeds = {"x": xp[:, :persons].numpy(), "person_mask": pm[:, :persons].numpy()}

            def torch_call():
                with torch.no_grad():
                    net(xp, pm)
            ms = _median_ms({"torch": torch_call, "onnxruntime": lambda: sess.run(None, feeds)},
                            args.repeats)
            figures[f"torch_ms_{persons}p"] = ms["torch"]
            figures[f"onnxruntime_ms_{persons}p"] = ms["onnxruntime"]
    import onnxruntime
    figures["onnxruntime_version"] = onnxruntime.__version__
    figures["torch_version"] = torch.__version__
    record("deploy_paper" if args.paper else "deploy", figures)
    return figures


if __name__ == "__main__":
    main()
