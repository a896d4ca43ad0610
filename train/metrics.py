"""Metrics of a run: one JSON object per logged step in `metrics.jsonl` (appended, so a
resumed run continues the same file), mirrored to TensorBoard when it is installed.
Only rank 0 writes."""
from __future__ import annotations

import json
import math
import os
import resource
import sys
from pathlib import Path

import torch

METRICS_FILE = "metrics.jsonl"


def memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA allocator peak on GPU; on CPU the peak resident set of
    this process (DataLoader workers, which are other processes, not included).

    On Linux that is `VmHWM` of /proc/self/status, not `getrusage().ru_maxrss`: across
    exec Linux carries the parent's peak into ru_maxrss, so a trainer started by a
    larger process (`make demo`'s `slim-eval demo`, a test runner) would report the
    parent's peak (proc(5), getrusage(2)). Elsewhere ru_maxrss (KiB on Linux, bytes on
    macOS)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024      # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class MetricsLog:
    """`log(record)` appends a JSON line (non-finite floats written as null).
    `tensorboard_note` says whether TensorBoard is on, off or missing (printed by the
    trainer, so the state is never silent)."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / METRICS_FILE
        self._file = None
        self._tb = None
        self.tensorboard_note = None
        if not enabled:
            return
        self._file = open(self.path, "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.tensorboard_note = ("TensorBoard: not installed, metrics go to metrics.jsonl only "
                                         "(pip install 'slim-skeleton[tensorboard]'; curves without it: "
                                         f"slim-train plot {run_dir} --out curves.png)")
            else:
                tb_dir = Path(run_dir) / "tensorboard"
                self._tb = SummaryWriter(log_dir=str(tb_dir))
                self.tensorboard_note = f"TensorBoard: on, `tensorboard --logdir {tb_dir}`"
        else:
            self.tensorboard_note = (f"TensorBoard: off (run.tensorboard=false); metrics.jsonl only "
                                     f"(curves: slim-train plot {run_dir} --out curves.png)")

    def drop_after(self, step: int) -> None:
        """Forget lines past `step` (written after the checkpoint a run resumes from),
        so the file holds each step once."""
        if not self.enabled or not self.path.is_file():
            return
        self._file.close()
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:  # a line cut by a kill: drop it
                continue
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(k + "\n" for k in keep))
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", buffering=1)

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        if self._tb is not None:
            step = int(record["step"])
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
