import numpy as np
import pytest

from slim.ingest.topology import LAYOUTS, NTU25
from slim.pipeline.config import PipelineConfig
from slim.pipeline.masking import draw_tubes, random_masks, run_table, tube_masks, view_masks

NUM_JOINTS = NTU25.num_joints
each_layout = pytest.mark.parametrize("lay", list(LAYOUTS.values()), ids=list(LAYOUTS))


def _runs(lay):
    return {tuple(np.flatnonzero(r)) for r in run_table(lay).joints}


RUNS = _runs(NTU25)


def _n_runs(g):
    return len(g) * (len(g) + 1) // 2


@each_layout
def test_run_table_holds_every_contiguous_run_of_every_group(lay):
    expected = {tuple(sorted(g[s:s + w])) for _, g in lay.groups
                for w in range(1, len(g) + 1) for s in range(len(g) - w + 1)}
    assert _runs(lay) == expected and len(_runs(lay)) == sum(_n_runs(g) for _, g in lay.groups)
    assert len(RUNS) == 15 + 21 + 21 + 10 + 10


@each_layout
@pytest.mark.parametrize("grid_t", [8, 4, 2, 1])
def test_tube_mask_counts_within_range(grid_t, lay):
    rng = np.random.default_rng(grid_t)
    cfg = PipelineConfig()
    m = tube_masks(np.full(300, grid_t), cfg.mask_ratio, cfg.a_min_for(grid_t), 0.5, rng, layout=lay)
    assert m.shape == (300, grid_t, lay.num_joints)
    n = grid_t * lay.num_joints
    c = m.reshape(300, -1).sum(1)
    # At least N_mask >= round(0.5 N); overshoot below one tube row (width <= 6).
    assert c.min() >= round(0.5 * n) and c.max() <= min(n, round(0.9 * n) + 5)


@each_layout
def test_every_tube_is_a_contiguous_run_of_one_group_over_consecutive_patches(lay):
    rng = np.random.default_rng(0)
    for grid_t in (8, 4, 2, 1):
        k = 500
        joints, t0, h = draw_tubes(np.full(k, grid_t), np.full(k, 200), np.full(k, 8.0),
                                   np.full(k, 100.0), rng, lay)
        assert {tuple(np.flatnonzero(r)) for r in joints} <= _runs(lay)
        assert np.all(t0 >= 0) and np.all(h >= 1) and np.all(t0 + h <= grid_t)
    w = joints.sum(1)
    assert np.all(h == 1)  # grid_t = 1 leaves one patch
    assert w.min() == 1 and w.max() == max(len(g) for _, g in lay.groups)


@each_layout
def test_mixed_grids_in_one_call_leave_rows_beyond_each_grid_empty(lay):
    cfg = PipelineConfig()
    rng = np.random.default_rng(5)
    lens = np.array([64, 32, 16, 8] * 25)
    m = view_masks(lens, cfg, rng, layout=lay)
    assert m.shape == (100, 8, lay.num_joints)
    for i, n in enumerate(lens):
        g = n // 8
        assert not m[i, g:].any() and m[i, :g].sum() >= round(0.5 * g * lay.num_joints)


def test_local_masks_drawn_with_probability_and_random_ablation_exact():
    cfg = PipelineConfig(masking="random")
    rng = np.random.default_rng(6)
    m = view_masks(np.full(2000, 16), cfg, rng, p=0.5)
    on = m.reshape(2000, -1).any(1)
    assert abs(on.mean() - 0.5) < 0.05
    r = random_masks(50, 8, (0.5, 0.9), rng).sum(1)
    assert r.min() >= 100 and r.max() <= 180


def _reference_tube_masks(grid_t, ratio, a_min, a_max_frac, rng, v=NUM_JOINTS):
    """The straightforward boolean lockstep loop (the bit-set loop must equal it)."""
    grid_t = np.asarray(grid_t, dtype=np.int64)
    k = grid_t.shape[0]
    n = grid_t * v
    a_min = np.broadcast_to(np.asarray(a_min, dtype=np.float64), (k,))
    a_max = a_max_frac * n
    target = np.rint(rng.uniform(ratio[0], ratio[1], size=k) * n).astype(np.int64)
    mask = np.zeros((k, int(grid_t.max()), v), dtype=bool)
    count = np.zeros(k, dtype=np.int64)
    t_idx = np.arange(mask.shape[1])
    active = np.flatnonzero(count < target)
    while active.size:
        joints, t0, h = draw_tubes(grid_t[active], target[active] - count[active],
                                   a_min[active], a_max[active], rng)
        rows = (t_idx >= t0[:, None]) & (t_idx < (t0 + h)[:, None])
        m = mask[active] | (rows[:, :, None] & joints[:, None, :])
        mask[active] = m
        count[active] = m.sum(axis=(1, 2))
        active = active[count[active] < target[active]]
    return mask


def test_bitset_tube_masks_equal_the_boolean_reference():
    cfg = PipelineConfig()
    grid_t = np.array([8, 4, 2, 1] * 60)
    for seed in range(3):
        want = _reference_tube_masks(grid_t, cfg.mask_ratio, cfg.a_min_for(grid_t), 0.5,
                                     np.random.default_rng(seed))
        got = tube_masks(grid_t, cfg.mask_ratio, cfg.a_min_for(grid_t), 0.5,
                         np.random.default_rng(seed))
        np.testing.assert_array_equal(got, want)
