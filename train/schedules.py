"""Per-step schedules, precomputed as arrays indexed by the global step (DINOv2's
CosineScheduler semantics): the loop only ever reads `schedules.lr[step]`, so resuming
at step s continues exactly where an uninterrupted run would be."""
from __future__ import annotations

import dataclasses

import numpy as np


def cosine(start: float, end: float, total_steps: int, warmup_steps: int = 0,
           warmup_start: float = 0.0) -> np.ndarray:
    """float64 [total_steps]: linear warmup from `warmup_start` to `start` over
    `warmup_steps` (the value at step warmup_steps is `start`), then a half cosine from
    `start` to `end` that reaches `end` at the last step."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    warmup_steps = min(max(int(warmup_steps), 0), total_steps)
    warm = np.linspace(warmup_start, start, warmup_steps, endpoint=False)
    n = total_steps - warmup_steps
    if n == 1:
        rest = np.array([end], dtype=np.float64)
    else:
        t = np.arange(n, dtype=np.float64) / max(n - 1, 1)
        rest = end + 0.5 * (start - end) * (1.0 + np.cos(np.pi * t))
    return np.concatenate([warm, rest]).astype(np.float64)


def linear_then_constant(start: float, end: float, ramp_steps: int, total_steps: int) -> np.ndarray:
    """float64 [total_steps]: linear from `start` to `end` over `ramp_steps`, then `end`."""
    ramp_steps = min(max(int(ramp_steps), 0), total_steps)
    ramp = np.linspace(start, end, ramp_steps, endpoint=False)
    return np.concatenate([ramp, np.full(total_steps - ramp_steps, end)]).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class Schedules:
    """Every per-step quantity of a run; arrays have length `total_steps`."""
    lr: np.ndarray                 # float64 [S], learning rate (before per-group multipliers)
    weight_decay: np.ndarray       # float64 [S]
    momentum: np.ndarray           # float64 [S], teacher EMA momentum
    teacher_temp: np.ndarray       # float64 [S]
    last_layer_frozen: np.ndarray  # bool [S]: heads' last layers get no update

    @property
    def total_steps(self) -> int:
        return int(self.lr.shape[0])

    def at(self, step: int) -> dict[str, float]:
        return {"lr": float(self.lr[step]), "wd": float(self.weight_decay[step]),
                "momentum": float(self.momentum[step]), "teacher_temp": float(self.teacher_temp[step]),
                "last_layer_frozen": bool(self.last_layer_frozen[step])}


def build_schedules(*, peak_lr: float, min_lr: float, total_steps: int, epoch_steps: int,
                    warmup_epochs: float, wd_start: float, wd_end: float,
                    momentum_start: float, momentum_end: float,
                    teacher_temp_start: float, teacher_temp_end: float,
                    teacher_temp_warmup_epochs: float, freeze_last_layer_epochs: float) -> Schedules:
    """All schedules of a run of `total_steps` steps, epochs being `epoch_steps` steps."""
    e = int(epoch_steps)
    return Schedules(
        lr=cosine(peak_lr, min_lr, total_steps, warmup_steps=round(warmup_epochs * e)),
        weight_decay=cosine(wd_start, wd_end, total_steps),
        momentum=cosine(momentum_start, momentum_end, total_steps),
        teacher_temp=linear_then_constant(teacher_temp_start, teacher_temp_end,
                                          round(teacher_temp_warmup_epochs * e), total_steps),
        last_layer_frozen=np.arange(total_steps) < round(freeze_last_layer_epochs * e),
    )
