import numpy as np
import pytest

from slim.ingest.topology import LAYOUTS, NTU25
from slim.pipeline.augment import (apply_augment, augment_operators, augment_views,
                                   mirror_matrices, rotation_matrices, sample_augment,
                                   scaling_matrices)
from slim.pipeline.config import PipelineConfig


each_layout = pytest.mark.parametrize("lay", list(LAYOUTS.values()), ids=list(LAYOUTS))


def _skeletons(rng, n=4, t=6, lay=NTU25):
    """Random but valid skeletons: joints built from random bones, parent first."""
    x = np.zeros((n, t, lay.num_joints, 3))
    x[:, :, lay.root] = rng.normal(size=(n, t, 3))
    for j, p in lay.bones:
        x[:, :, j] = x[:, :, p] + rng.normal(scale=0.2, size=(n, t, 3))
    return x.astype(np.float32)


def _apply(x, j, k):
    return apply_augment(x, augment_operators(j, k))


def _eye(n, lay=NTU25):
    return np.tile(np.eye(lay.num_joints), (n, 1, 1)), np.tile(np.eye(3), (n, 1, 1))


@each_layout
def test_rotation_matrix_order_and_bone_lengths(lay):
    a, b, g = np.array([0.3]), np.array([-2.0]), np.array([0.4])
    rx = np.array([[1, 0, 0], [0, np.cos(a[0]), -np.sin(a[0])], [0, np.sin(a[0]), np.cos(a[0])]])
    ry = np.array([[np.cos(b[0]), 0, np.sin(b[0])], [0, 1, 0], [-np.sin(b[0]), 0, np.cos(b[0])]])
    rz = np.array([[np.cos(g[0]), -np.sin(g[0]), 0], [np.sin(g[0]), np.cos(g[0]), 0], [0, 0, 1]])
    np.testing.assert_allclose(rotation_matrices(a, b, g)[0], rz @ ry @ rx, atol=1e-12)
    rng = np.random.default_rng(0)
    x = _skeletons(rng, lay=lay)
    j, _ = _eye(4, lay)
    k = rotation_matrices(*rng.uniform(-np.pi, np.pi, size=(3, 4)))
    np.testing.assert_allclose(lay.bone_lengths(_apply(x, j, k)), lay.bone_lengths(x), atol=1e-5)


@each_layout
def test_mirror_twice_is_identity_and_keeps_bone_lengths(lay):
    x = _skeletons(np.random.default_rng(1), lay=lay)
    p, f = mirror_matrices(np.ones(4, dtype=bool), lay)
    once = _apply(x, p, f)
    # Each bone keeps its length; left and right bones trade places.
    pos = {c: i for i, (c, _) in enumerate(lay.bones)}
    swapped = [pos[int(lay.mirror_perm[c])] for c, _ in lay.bones]
    np.testing.assert_allclose(lay.bone_lengths(once)[..., swapped], lay.bone_lengths(x), atol=1e-6)
    np.testing.assert_array_equal(_apply(once, p, f), x)


def test_mirror_turns_a_left_hand_wave_into_a_right_hand_wave():
    t = 8
    x = np.zeros((1, t, NTU25.num_joints, 3), np.float32)
    x[0, :, 8, 0], x[0, :, 4, 0] = -0.2, 0.2  # right shoulder at x=-0.2, left at +0.2
    x[0, :, 7, 0] = 0.2 + 0.1 * np.sin(np.arange(t))  # left hand (7) waves along x
    x[0, :, 7, 1] = 0.5
    p, f = mirror_matrices(np.array([True]))
    y = _apply(x, p, f)[0]
    np.testing.assert_allclose(y[:, 11, 0], -x[0, :, 7, 0], atol=1e-7)  # right hand (11)
    np.testing.assert_allclose(y[:, 11, 1], 0.5)
    assert np.all(y[:, 7] == 0)  # the left hand is now still (it was the right)
    np.testing.assert_allclose(y[:, 4, 0], 0.2)  # shoulders swapped and reflected


@each_layout
def test_bone_scaling_keeps_directions_and_root_and_scales_lengths_by_group(lay):
    rng = np.random.default_rng(2)
    x = _skeletons(rng, lay=lay)
    factors = rng.uniform(0.85, 1.15, size=(4, len(lay.groups)))
    _, k = _eye(4, lay)
    y = _apply(x, scaling_matrices(factors, lay), k)
    np.testing.assert_allclose(y[:, :, lay.root], x[:, :, lay.root], atol=1e-6)  # root trajectory
    child = np.array([c for c, _ in lay.bones])
    want = lay.bone_lengths(x) * factors[:, lay.group_of_joint[child]][:, None, :]
    np.testing.assert_allclose(lay.bone_lengths(y), want, rtol=1e-4)
    parent = np.array([lay.parents[c] for c in child])
    bx = x[:, :, child] - x[:, :, parent]
    by = y[:, :, child] - y[:, :, parent]
    cos = (bx * by).sum(-1) / np.linalg.norm(bx, axis=-1) / np.linalg.norm(by, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-5)


@each_layout
def test_scaling_with_unit_factors_is_exactly_the_identity(lay):
    x = _skeletons(np.random.default_rng(3), lay=lay)
    _, k = _eye(4, lay)
    np.testing.assert_array_equal(_apply(x, scaling_matrices(np.ones((4, len(lay.groups))), lay), k), x)


def test_absent_persons_stay_absent_and_probabilities_hold():
    rng = np.random.default_rng(4)
    cfg = PipelineConfig(p_rotate=1.0, p_mirror=1.0, p_scale=1.0)
    x = _skeletons(rng)
    x[1] = 0.0
    x[2, 3:] = 0.0
    y = augment_views(x, cfg, rng)
    assert not y[1].any() and not y[2, 3:].any() and y[0].any()
    # p = 0 everywhere: every view is returned exactly.
    off = PipelineConfig(p_rotate=0.0, p_mirror=0.0, p_scale=0.0)
    np.testing.assert_array_equal(augment_views(x, off, rng), x)
    # p = 0.5: about half the views are left alone.
    j, k = sample_augment(4000, PipelineConfig(), rng)
    identity = np.all(j == np.eye(NTU25.num_joints), axis=(1, 2)) & np.all(k == np.eye(3), axis=(1, 2))
    assert abs(identity.mean() - 0.125) < 0.03


@each_layout
def test_factored_fast_path_equals_the_general_operators(lay):
    # sample_augment_parts makes the same draws as sample_augment; mirrored views taken
    # from mirror_source, then apply_augment_parts, equal apply_augment with J = S @ P.
    from slim.pipeline.augment import apply_augment_parts, mirror_source, sample_augment_parts

    cfg = PipelineConfig()
    n = 64
    j, k = sample_augment(n, cfg, np.random.default_rng(7), lay)
    parts = sample_augment_parts(n, cfg, np.random.default_rng(7), lay)
    p, f = mirror_matrices(parts["mirror"], lay)
    s = np.tile(np.eye(lay.num_joints), (n, 1, 1))
    s[parts["scaled"]] = parts["scale"]
    np.testing.assert_allclose(s @ p, j, atol=1e-6)
    np.testing.assert_allclose(parts["coord"], k, atol=1e-6)
    identity = np.all(k == np.eye(3), axis=(1, 2))
    assert np.array_equal(~parts["coord_on"], identity)
    assert np.array_equal(np.isin(np.arange(n), parts["scaled"]),
                          ~np.all(s == np.eye(lay.num_joints), axis=(1, 2)))

    frames = _skeletons(np.random.default_rng(8), n=1, t=n * 5, lay=lay)[0]  # [R, V, C]
    src = mirror_source(frames, lay)
    np.testing.assert_array_equal(src[frames.shape[0]:], frames[:, lay.mirror_perm])
    rows = np.arange(n * 5).reshape(n, 5)
    want = apply_augment(frames[rows], augment_operators(j, k))
    got = src[rows + frames.shape[0] * parts["mirror"][:, None]]
    # Views split across calls (as per scale in the transform): offsets must line up.
    got[:40] = apply_augment_parts(got[:40], parts, 0)
    got[40:] = apply_augment_parts(got[40:], parts, 40)
    np.testing.assert_allclose(got, want, atol=1e-5)
    untouched = ~parts["coord_on"] & ~np.isin(np.arange(n), parts["scaled"])
    np.testing.assert_array_equal(got[untouched], frames[rows][untouched])
