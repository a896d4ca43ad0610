import numpy as np
import pytest

from slim.pipeline.config import PipelineConfig
from slim.pipeline.transform import pretrain_batch, recentre
from slim.pipeline.views import (frames_present, resample, resample_index,
                                 sample_global_intervals, sample_local_intervals, test_view,
                                 valid_span)


def test_valid_span_skips_leading_and_trailing_absent_frames():
    present = np.array([0, 0, 1, 0, 1, 1, 0], dtype=bool)
    assert valid_span(present) == (2, 4)
    x = np.zeros((5, 25, 3), np.float32)
    x[1:3, 4, 0] = 1.0
    assert frames_present(x).tolist() == [False, True, True, False, False]


@pytest.mark.parametrize("length,n", [(3, 8), (7, 64), (64, 64), (100, 64), (300, 8), (1, 16)])
def test_resample_indices_stay_inside_the_crop(length, n):
    lo, hi, w = resample_index(np.array([5]), np.array([length]), n)
    assert lo.shape == hi.shape == w.shape == (1, n)
    assert lo.min() >= 5 and hi.max() <= 5 + length - 1
    assert np.all((w >= 0) & (w < 1))
    if length >= n:  # uniform sampling: whole frames, strictly increasing
        assert not w.any() and np.all(np.diff(lo[0]) > 0)


def test_linear_interpolation_is_exact_on_a_ramp():
    t = np.arange(20, dtype=np.float64)
    x = 0.5 * t - 2.0  # a linear ramp in frames
    out = resample(x, start=4, length=5, n=16)  # upsample frames 4..8 to 16
    expected = 0.5 * np.linspace(4, 8, 16) - 2.0
    np.testing.assert_allclose(out, expected, atol=1e-12)
    # Downsampling picks the frame at each bin centre: frames 4+1, 4+4, 4+7, 4+10.
    np.testing.assert_array_equal(resample(t, 4, 12, 4), [5, 8, 11, 14])


def test_local_views_lie_inside_their_anchor_interval():
    rng = np.random.default_rng(0)
    valid = rng.integers(1, 400, size=300)
    gs, gl = sample_global_intervals(valid, (0.5, 1.0), rng)
    assert np.all(gl >= 1) and np.all(gs >= 0) and np.all(gs + gl <= valid[:, None])
    assert np.all(gl >= np.floor(0.5 * valid[:, None]))
    for count, ratio in [(2, (0.35, 0.7)), (2, (0.15, 0.4)), (3, (0.05, 0.2))]:
        s, ln, anchor = sample_local_intervals(gs, gl, count, ratio, rng)
        assert s.shape == (300, 2 * count) and anchor.tolist() == [0] * count + [1] * count
        a_s, a_l = gs[:, anchor], gl[:, anchor]
        assert np.all(s >= a_s) and np.all(s + ln <= a_s + a_l) and np.all(ln >= 1)
        big = a_l >= 100  # rounding aside, the ratio range holds
        r = ln[big] / a_l[big]
        assert r.min() >= ratio[0] - 0.01 and r.max() <= ratio[1] + 0.01


def test_test_view_centre_crop():
    t = 100
    x = np.zeros((t, 2, 25, 3), np.float32)
    x[:, 0, :, 1] = np.arange(t)[:, None] + 1.0  # y = frame + 1
    out = test_view(x, 64, 0.95)
    assert out.shape == (2, 64, 25, 3) and out.dtype == np.float32
    # 95 frames kept from frame 2: bin centres of 95 frames in 64 bins.
    frames = 2 + np.floor((np.arange(64) + 0.5) * 95 / 64)
    np.testing.assert_array_equal(out[0, :, 0, 1], frames + 1)
    assert not out[1].any()  # the absent person stays absent


def test_recentre_on_spine_mid_of_first_present_frame_keeps_absent_frames_zero():
    flat = np.zeros((6, 25, 3), np.float32)
    flat[1:3] = 2.0
    flat[1, 1] = [1.0, 2.0, 3.0]  # SpineMid of the first present frame of sample 0
    flat[4:6] = 5.0
    out, first, length = recentre(flat, np.array([0, 3, 6]))
    assert first.tolist() == [1, 4] and length.tolist() == [2, 2]
    np.testing.assert_array_equal(out[1, 1], [0, 0, 0])
    np.testing.assert_array_equal(out[2, 0], [1.0, 0.0, -1.0])
    assert not out[0].any() and not out[3].any() and not out[4:].any()


def test_pretrain_batch_shapes_and_no_out_of_range_frames():
    cfg = PipelineConfig(augment=False)
    rng = np.random.default_rng(1)
    samples = []
    for t in (5, 40, 130):  # frame value f + 1 at every joint: frames are identifiable
        x = np.zeros((t, 2, 25, 3), np.float32)
        x[:, 0] = (np.arange(t) + 1.0)[:, None, None]
        samples.append(x)
    out = pretrain_batch(samples, cfg, rng)
    assert out["global"].shape == (3, 2, 64, 25, 3)
    assert out["global_mask"].shape == (3, 2, 200) and out["global_mask"].any(axis=2).all()
    for s, n in zip(out["locals"], (32, 16, 8)):
        assert s["x"].shape == (3, 4, n, 25, 3) and s["mask"].shape == (3, 4, n // 8 * 25)
    for i, t in enumerate((5, 40, 130)):
        # Re-centred on frame 0's value (1.0): values are frame indices in [0, t - 1].
        for v in [out["global"][i]] + [s["x"][i] for s in out["locals"]]:
            assert v.min() >= 0.0 and v.max() <= t - 1


def _reference_pretrain_batch(samples, cfg, rng):
    """The transform written with the general operators: full [V, V] x [3, 3] matrices
    for every view (apply_augment) and interpolation of every frame."""
    from slim.pipeline.augment import apply_augment, augment_operators, sample_augment
    from slim.pipeline.masking import view_masks
    from slim.pipeline.transform import pick_persons
    from slim.pipeline.views import sample_global_intervals, sample_local_intervals

    b = len(samples)
    flat, starts = pick_persons(samples, rng)
    flat, first, length = recentre(flat, starts)
    g_start, g_len = sample_global_intervals(length, cfg.global_ratio, rng)
    g_start = g_start + first[:, None]
    views = [(cfg.global_len, g_start, g_len)]
    for n, count, ratio in zip(cfg.local_lens, cfg.local_counts, cfg.local_ratios):
        s, ln, _ = sample_local_intervals(g_start, g_len, count, ratio, rng)
        views.append((n, s, ln))
    nvs = [s.shape[1] for _, s, _ in views]
    lens = np.repeat([n for n, _, _ in views], [b * nv for nv in nvs])
    op = augment_operators(*sample_augment(lens.size, cfg, rng)) if cfg.augment else None
    masks = view_masks(lens, cfg, rng, np.where(np.arange(lens.size) < b * nvs[0], 1.0,
                                                cfg.mask_local_p))
    out, at = [], 0
    for (n, s, ln), nv in zip(views, nvs):
        lo, hi, w = resample_index(s.ravel(), ln.ravel(), n)
        x = flat[lo] + w[..., None, None] * (flat[hi] - flat[lo])
        if op is not None:
            x = apply_augment(x, (op[0][at:at + b * nv], op[1][at:at + b * nv]))
        out.append((x.reshape(b, nv, n, 25, 3),
                    masks[at:at + b * nv, :n // cfg.patch_t].reshape(b, nv, -1)))
        at += b * nv
    return out


@pytest.mark.parametrize("cfg", [PipelineConfig(), PipelineConfig(augment=False),
                                 PipelineConfig(p_rotate=1.0, p_mirror=1.0, p_scale=1.0)])
def test_pretrain_batch_fast_path_equals_the_general_path(cfg):
    rng = np.random.default_rng(9)
    samples = []
    for i in range(24):
        t, m = int(rng.integers(5, 150)), 1 + (i % 3 == 0)
        x = rng.normal(scale=0.3, size=(t, m, 25, 3)).astype(np.float32)
        x[:i % 4] = 0.0  # leading absent frames
        samples.append(x)
    for seed in range(3):
        got = pretrain_batch(samples, cfg, np.random.default_rng(seed))
        want = _reference_pretrain_batch(samples, cfg, np.random.default_rng(seed))
        pairs = [(got["global"], got["global_mask"])] + [(s["x"], s["mask"]) for s in got["locals"]]
        for (x, m), (wx, wm) in zip(pairs, want):
            assert x.dtype == np.float32 and x.shape == wx.shape
            np.testing.assert_allclose(x, wx, atol=1e-5)
            np.testing.assert_array_equal(m, wm)
