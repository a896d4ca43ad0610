"""Capture and restore the process-wide random generators (torch CPU and CUDA, numpy's
legacy global, Python's `random`) in a form `torch.load(weights_only=True)` accepts.

The data pipeline owns its own generators, seeded by (seed, rank, worker, step), so
they need no saving: a resumed run regenerates them from the step. These global states
are saved anyway so that any library code drawing from them resumes identically."""
from __future__ import annotations

import random

import numpy as np
import torch


def capture_rng() -> dict:
    """This process's generator states as plain types and tensors."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def restore_rng(state: dict) -> None:
    """Inverse of capture_rng (CUDA states only when this process sees the same GPUs)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
