"""Semantic tube masking (paper Algorithm 1, DESIGN.md decision 5) and the random-token
ablation, drawn for many token grids at once.

A grid is [grid_t, V]: grid_t temporal patches (view length / patch_t) by V joints;
masks are returned flattened time-major as bool [K, grid_t * V], True = masked.
The tube loop of Algorithm 1 runs in lockstep for all K grids: each round adds one tube
to every grid that has not reached its target yet.

The semantic groups come from the data's skeleton layout (slim.ingest.topology.Layout);
every function takes it (default ntu25) and its run table is built once per layout.
"""
from __future__ import annotations

import numpy as np

from functools import lru_cache

from slim.ingest.topology import NTU25, Layout


class RunTable:
    """Every contiguous run of every group's joint list of one layout.

    joints: bool [R, V]; width: int [R]; index: int [G, W_max, W_max] mapping
    (group, width - 1, start) to a run id (-1 where impossible); group_sizes: int [G];
    bits: int64 [R], each run's joints as a bit set (bit v = joint v), for the lockstep
    loop (so V <= 63).
    """

    def __init__(self, layout: Layout):
        groups = [g for _, g in layout.groups]
        v = layout.num_joints
        if v > 63:
            raise ValueError(f"layout {layout.name}: tube masks hold joints in int64 bit sets (V <= 63)")
        wmax = max(len(g) for g in groups)
        index = np.full((len(groups), wmax, wmax), -1, dtype=np.int64)
        joints, width = [], []
        for gi, g in enumerate(groups):
            for w in range(1, len(g) + 1):
                for s in range(len(g) - w + 1):
                    index[gi, w - 1, s] = len(joints)
                    row = np.zeros(v, dtype=bool)
                    row[list(g[s:s + w])] = True
                    joints.append(row)
                    width.append(w)
        self.num_joints = v
        self.joints, self.width, self.index = np.stack(joints), np.asarray(width), index
        self.group_sizes = np.array([len(g) for g in groups])
        self.bits = (self.joints.astype(np.int64) << np.arange(v)).sum(1)


@lru_cache(maxsize=None)
def run_table(layout: Layout) -> RunTable:
    """The (cached) RunTable of `layout`."""
    return RunTable(layout)


_NTU = run_table(NTU25)
#: The ntu25 tables (kept for callers that predate layouts).
RUN_JOINTS, RUN_WIDTH, RUN_INDEX = _NTU.joints, _NTU.width, _NTU.index
GROUP_SIZES, RUN_BITS = _NTU.group_sizes, _NTU.bits


def _draw_runs(grid_t: np.ndarray, budget: np.ndarray, a_min: np.ndarray, a_max: np.ndarray,
               rng: np.random.Generator, table: RunTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`draw_tubes` with the run as its id in table.joints (same draws)."""
    k = grid_t.shape[0]
    u = rng.random((5, k))
    sizes = table.group_sizes
    g = np.minimum((u[0] * len(sizes)).astype(np.int64), len(sizes) - 1)
    size = sizes[g]
    w = (u[1] * size).astype(np.int64) + 1
    s = (u[2] * (size - w + 1)).astype(np.int64)
    p_max = np.minimum(budget, a_max)
    # U(A_min, P_max); when fewer than A_min tokens are left the draw is P_max itself.
    area = np.where(p_max > a_min, a_min + u[3] * (p_max - a_min), p_max)
    h = np.clip(np.rint(area / w), 1, grid_t).astype(np.int64)
    t0 = (u[4] * (grid_t - h + 1)).astype(np.int64)
    return table.index[g, w - 1, s], t0, h


def draw_tubes(grid_t: np.ndarray, budget: np.ndarray, a_min: np.ndarray, a_max: np.ndarray,
               rng: np.random.Generator, layout: Layout = NTU25
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One round of Algorithm 1 steps 4-9 for k grids.

    grid_t: int [k] temporal patches; budget: int [k] tokens still to mask (N_mask - C);
    a_min, a_max: [k] tube area bounds (tokens). Returns joints: bool [k, V] (a
    contiguous run of one group), t0: int [k], h: int [k] (temporal patches of the tube).
    """
    table = run_table(layout)
    run, t0, h = _draw_runs(grid_t, budget, a_min, a_max, rng, table)
    return table.joints[run], t0, h


def tube_masks(grid_t, ratio: tuple[float, float], a_min, a_max_frac: float,
               rng: np.random.Generator, v: int | None = None,
               max_rounds: int = 10_000, layout: Layout = NTU25) -> np.ndarray:
    """Semantic tube masks for k grids of [grid_t, V] tokens, grids of different temporal
    lengths drawn together (one lockstep loop for all of them).

    grid_t: int [k] temporal patches per grid; a_min: float or [k] minimum tube area.
    Target N_mask = round(U[ratio] * N) per grid (N = grid_t * V), A_max = a_max_frac * N.
    Returns bool [k, max(grid_t), V]: rows at or beyond a grid's grid_t are False; each
    grid has at least N_mask masked tokens and overshoots by less than one tube width.
    Tubes are contiguous runs of `layout`'s groups; v, when given, must be its joint
    count (ValueError otherwise).
    """
    table = run_table(layout)
    v = table.num_joints if v is None else v
    grid_t = np.asarray(grid_t, dtype=np.int64)
    k = grid_t.shape[0]
    n = grid_t * v
    a_min = np.broadcast_to(np.asarray(a_min, dtype=np.float64), (k,))
    a_max = a_max_frac * n
    target = np.rint(rng.uniform(ratio[0], ratio[1], size=k) * n).astype(np.int64)
    t_max = int(grid_t.max()) if k else 1
    if v != table.num_joints:
        raise ValueError(f"tube masks of layout {layout.name} are drawn on {table.num_joints} joints, got v={v}")
    # Each row of a grid is a bit set of its masked joints: the loop touches k x t_max
    # integers instead of k x t_max x V booleans, and counts with a popcount.
    bits = np.zeros((k, t_max), dtype=np.int64)
    count = np.zeros(k, dtype=np.int64)
    t_idx = np.arange(t_max)
    active = np.flatnonzero(count < target)
    for _ in range(max_rounds):
        if active.size == 0:
            return (bits[:, :, None] >> np.arange(v)) & 1 == 1
        run, t0, h = _draw_runs(grid_t[active], target[active] - count[active],
                                a_min[active], a_max[active], rng, table)
        rows = (t_idx >= t0[:, None]) & (t_idx < (t0 + h)[:, None])
        m = bits[active] | np.where(rows, table.bits[run][:, None], 0)
        bits[active] = m
        count[active] = np.bitwise_count(m).sum(axis=1)
        active = active[count[active] < target[active]]
    raise RuntimeError(f"tube masking did not reach its target in {max_rounds} rounds "
                       f"(ratio {ratio}); this is a bug, please report it")


def random_masks(k: int, grid_t: int, ratio: tuple[float, float], rng: np.random.Generator,
                 v: int = NTU25.num_joints) -> np.ndarray:
    """Independent-token masks (the ablation baseline): exactly round(U[ratio] * N)
    tokens per grid. Returns bool [k, grid_t * V]."""
    n = grid_t * v
    target = np.rint(rng.uniform(ratio[0], ratio[1], size=k) * n).astype(np.int64)
    rank = np.argsort(rng.random((k, n)), axis=1).argsort(axis=1)
    return rank < target[:, None]


def view_masks(view_lens, cfg, rng: np.random.Generator, p=1.0, layout: Layout = NTU25) -> np.ndarray:
    """Masks for k views of possibly different lengths under cfg (PipelineConfig), on
    the token grid of `layout` (V = its joint count; tubes follow its groups).

    view_lens: int [k] frames; p: float or [k], probability that a view is masked (else
    its mask is all False). Returns bool [k, max(view_lens) // patch_t, V] (rows beyond
    a view's own grid are False); a view's mask is [:grid_t].reshape(-1), grid_t =
    view_len // patch_t.
    """
    grid_t = np.asarray(view_lens, dtype=np.int64) // cfg.patch_t
    k = grid_t.shape[0]
    v = layout.num_joints
    out = np.zeros((k, int(grid_t.max()) if k else 1, v), dtype=bool)
    on = np.flatnonzero(rng.random(k) < np.broadcast_to(p, (k,)))
    if on.size == 0:
        return out
    gt = grid_t[on]
    if cfg.masking == "tube":
        m = tube_masks(gt, cfg.mask_ratio, cfg.a_min_for(gt), cfg.a_max_frac, rng, layout=layout)
        out[on, :m.shape[1]] = m
    else:
        for t in np.unique(gt):  # one draw per grid size (at most four)
            sel = on[gt == t]
            out[sel, :t] = random_masks(sel.size, int(t), cfg.mask_ratio, rng, v).reshape(-1, t, v)
    return out
