"""The pretraining transform for a whole batch at once: pick a person, re-centre, cut
2 global + all local views, augment, mask.

Per-sample Python work is limited to picking the person; everything after that is done
on one flat frame array for the batch (a gather per scale, mirrored views gathered from
a joint-permuted copy, one batched matmul per scale for bone scaling (scaled views only)
and one for rotation/reflection (rotated or mirrored views only), tube masks drawn for
all grids of all scales in one lockstep loop on per-row joint bit sets).
"""
from __future__ import annotations

import time

import numpy as np

from slim.ingest.topology import NTU25, Layout

from .augment import apply_augment_parts, mirror_source, sample_augment_parts
from .config import PipelineConfig
from .masking import view_masks
from .views import gather, resample_index, sample_global_intervals, sample_local_intervals


def pick_persons(samples: list[np.ndarray], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One random present person per sample, concatenated along time.

    samples: B arrays float32 [T_i, M_i, V, C] -> flat: float32 [sum T_i, V, C],
    starts: int64 [B + 1] (row offsets of each sample in flat).
    """
    chosen = []
    for x in samples:
        m = x.shape[1]
        if m == 1:
            chosen.append(x[:, 0])
            continue
        present = np.flatnonzero(np.any(x != 0, axis=(0, 2, 3)))
        p = present[rng.integers(present.size)] if present.size else 0
        chosen.append(x[:, p])
    lens = np.array([c.shape[0] for c in chosen], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)])
    return np.concatenate(chosen, axis=0).astype(np.float32, copy=False), starts


def recentre(flat: np.ndarray, starts: np.ndarray, center_joint: int = NTU25.center_joint
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-centre each sequence on the layout's centre joint (ntu25: SpineMid, 1;
    kinect_v1_20: Spine, 1) at its first present frame (DESIGN.md decision 7); absent
    frames stay zero.

    flat: float32 [R, V, C], starts: int64 [B + 1] -> (centred flat [R, V, C],
    first: int64 [B] absolute row of the first present frame, length: int64 [B] frames
    from the first to the last present frame).
    """
    present = np.any(flat != 0, axis=(1, 2))  # [R]
    b = starts.shape[0] - 1
    rows = np.arange(flat.shape[0])
    sample = np.repeat(np.arange(b), np.diff(starts))
    big = np.iinfo(np.int64).max
    first = np.full(b, big, dtype=np.int64)
    np.minimum.at(first, sample[present], rows[present])
    last = np.full(b, -1, dtype=np.int64)
    np.maximum.at(last, sample[present], rows[present])
    empty = first == big
    first = np.where(empty, starts[:-1], first)
    last = np.where(empty, starts[1:] - 1, last)
    centre = flat[first, center_joint]  # [B, C]
    out = flat - centre[sample][:, None, :] * present[:, None, None]
    return out, first, last - first + 1


def pretrain_batch(samples: list[np.ndarray], cfg: PipelineConfig, rng: np.random.Generator,
                   layout: Layout = NTU25, timings: dict | None = None,
                   clock=time.perf_counter) -> dict:
    """Views, augmentations and masks for a batch of samples of skeleton `layout` (the
    data's, from samples.h5 / the manifest: it decides the centre joint, the mirror
    permutation, the bone tree of scaling and the groups of tube masking).

    samples: B arrays float32 [T_i, M_i, V, C] (metres) -> dict of numpy arrays:
      global: float32 [B, 2, global_len, V, C]; global_mask: bool [B, 2, grid * V];
      locals: list (one per scale, longest first) of {x: float32 [B, n_s, T_s, V, C],
      mask: bool [B, n_s, T_s // patch_t * V], anchor: int64 [n_s]}, n_s = 2 * count.
    timings, when given, accumulates seconds per stage (views, augment, mask) of `clock`
    (wall time by default; time.process_time for CPU time). Raises ValueError when the
    samples' V is not the layout's joint count.
    """
    clock = _Clock(timings, clock)
    b = len(samples)
    flat, starts = pick_persons(samples, rng)
    v, c = flat.shape[1:]
    if v != layout.num_joints:
        raise ValueError(f"samples have {v} joints, layout {layout.name} has {layout.num_joints}")
    flat, first, length = recentre(flat, starts, layout.center_joint)

    g_start, g_len = sample_global_intervals(length, cfg.global_ratio, rng)  # [B, 2]
    g_start = g_start + first[:, None]
    views = [(cfg.global_len, g_start, g_len, None)]
    for n, count, ratio in zip(cfg.local_lens, cfg.local_counts, cfg.local_ratios):
        s, ln, anchor = sample_local_intervals(g_start, g_len, count, ratio, rng)
        views.append((n, s, ln, anchor))

    # Draw every view's augmentation and mask at once (all scales together), then
    # apply them scale by scale: fewer, larger numpy/torch calls.
    nvs = [s.shape[1] for _, s, _, _ in views]
    lens = np.repeat([n for n, _, _, _ in views], [b * nv for nv in nvs])
    clock("views")
    parts = sample_augment_parts(lens.size, cfg, rng, layout) if cfg.augment else None
    if parts is not None and parts["mirror"].any():
        # Mirroring is a joint permutation: gather mirrored views from a permuted copy.
        src, mirror_rows = mirror_source(flat, layout), flat.shape[0] * parts["mirror"]
    else:
        src, mirror_rows = flat, np.zeros(lens.size, dtype=np.int64)
    clock("augment")
    p = np.where(np.arange(lens.size) < b * nvs[0], 1.0, cfg.mask_local_p)
    masks = view_masks(lens, cfg, rng, p, layout)
    clock("mask")
    out: dict = {"locals": []}
    at = 0
    for (n, s, ln, anchor), nv in zip(views, nvs):
        lo, hi, w = resample_index(s.ravel(), ln.ravel(), n)
        off = mirror_rows[at:at + b * nv, None]
        x = gather(src, lo + off, hi + off, w)  # [B * nv, n, V, C]
        clock("views")
        if parts is not None:
            x = apply_augment_parts(x, parts, at)
            clock("augment")
        x = x.reshape(b, nv, n, v, c)
        mask = masks[at:at + b * nv, :n // cfg.patch_t].reshape(b, nv, -1)
        at += b * nv
        if anchor is None:
            out["global"], out["global_mask"] = x, mask
        else:
            out["locals"].append({"x": x, "mask": mask, "anchor": anchor})
    return out


class _Clock:
    """Adds the time since the previous call to timings[stage] (no-op without timings)."""

    def __init__(self, timings: dict | None, clock=time.perf_counter):
        self.timings, self.clock, self.t = timings, clock, clock()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now = self.clock()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.t
            self.t = now
